package config

import (
	"fmt"
	"reflect"
	"strings"
)

// keyLines maps dotted keys to the line (from 1) where they are set.
// Keys inside arrays of tables appear twice: with their index
// ("feeds.feed[1].url") and without it, the first occurrence
// ("feeds.feed.url"), which is how toml.MetaData names them.
type keyLines map[string]int

// locateKeys scans TOML text for table headers and key/value lines. It is a
// locator for error messages, not a parser: the toml package has already
// judged the syntax by the time a line number is needed.
func locateKeys(data []byte) keyLines {
	loc := keyLines{}
	set := func(k string, line int) {
		if _, ok := loc[k]; !ok {
			loc[k] = line
		}
	}
	var prefix, plain string
	counts := map[string]int{}
	inMulti := ""
	for i, raw := range strings.Split(string(data), "\n") {
		line := i + 1
		s := strings.TrimSpace(raw)
		if inMulti != "" {
			if strings.Contains(s, inMulti) {
				inMulti = ""
			}
			continue
		}
		if s == "" || s[0] == '#' {
			continue
		}
		switch {
		case strings.HasPrefix(s, "[["):
			name := normKey(strings.TrimSuffix(strings.SplitN(s[2:], "]]", 2)[0], "]]"))
			idx := counts[name]
			counts[name]++
			plain = name
			prefix = fmt.Sprintf("%s[%d]", name, idx)
			set(prefix, line)
			set(plain, line)
		case s[0] == '[':
			name := normKey(strings.SplitN(s[1:], "]", 2)[0])
			prefix, plain = name, name
			set(name, line)
		default:
			eq := strings.IndexByte(s, '=')
			if eq <= 0 {
				continue
			}
			k := normKey(s[:eq])
			rest := strings.TrimSpace(s[eq+1:])
			for _, q := range []string{`"""`, `'''`} {
				if strings.HasPrefix(rest, q) && !strings.Contains(rest[3:], q) {
					inMulti = q
				}
			}
			if prefix == "" {
				set(k, line)
				continue
			}
			set(prefix+"."+k, line)
			set(plain+"."+k, line)
		}
	}
	return loc
}

// line returns where key (or, failing that, its nearest enclosing table) is
// set; 0 when it is not in the file.
func (l keyLines) line(key string) int {
	for k := key; k != ""; {
		if n, ok := l[k]; ok {
			return n
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

func normKey(k string) string {
	parts := strings.Split(strings.TrimSpace(k), ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

// knownKeys lists every key a configuration may set.
func knownKeys() []string {
	var keys []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := f.Tag.Get("toml")
			if name == "" || name == "-" {
				continue
			}
			k := prefix + name
			keys = append(keys, k)
			ft := f.Type
			if ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(k+".", ft)
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
	return keys
}

// suggest proposes the closest known key to a mistyped one.
func suggest(key string) string {
	best, bestD := "", 3
	for _, k := range knownKeys() {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

package feeds

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/btslave/btslave/config"
)

// filter is a feed's compiled item filter.
type filter struct {
	include, exclude *regexp.Regexp
	minSize, maxSize int64
	categories       []string
	maxAge           time.Duration
}

// newFilter compiles the filter fields of f.
func newFilter(f *config.Feed) (*filter, error) {
	flt := &filter{minSize: int64(f.MinSize), maxSize: int64(f.MaxSize), maxAge: f.MaxAge.Std()}
	var err error
	if f.Include != "" {
		if flt.include, err = regexp.Compile(f.Include); err != nil {
			return nil, fmt.Errorf("include: %w", err)
		}
	}
	if f.Exclude != "" {
		if flt.exclude, err = regexp.Compile(f.Exclude); err != nil {
			return nil, fmt.Errorf("exclude: %w", err)
		}
	}
	for _, c := range strings.Split(f.Category, ",") {
		if c = strings.TrimSpace(c); c != "" {
			flt.categories = append(flt.categories, c)
		}
	}
	return flt, nil
}

// candidate is what the filter judges: the item's data, completed from its
// .torrent or magnet link once resolved.
type candidate struct {
	title      string
	size       int64 // 0 = unknown
	published  time.Time
	categories []string
	// final is false before resolution, when an empty title or size may
	// still become known: such checks are put off instead of failed.
	final bool
}

// check decides whether c is kept, and says why. Unknown sizes and dates
// pass their filters, and the reason says so.
func (f *filter) check(c candidate, now time.Time) (bool, string) {
	titleKnown := c.title != "" || c.final
	if titleKnown {
		if f.include != nil && !f.include.MatchString(c.title) {
			return false, fmt.Sprintf("not matched by include /%s/", f.include)
		}
		if f.exclude != nil {
			if loc := f.exclude.FindStringIndex(c.title); loc != nil {
				return false, fmt.Sprintf("excluded by exclude /%s/ (matched %q)", f.exclude, c.title[loc[0]:loc[1]])
			}
		}
	}
	if len(f.categories) > 0 && (c.final || len(c.categories) > 0) {
		if !f.categoryMatch(c.categories) {
			if len(c.categories) == 0 {
				return false, fmt.Sprintf("no category; want %s", strings.Join(f.categories, " or "))
			}
			return false, fmt.Sprintf("category %s is not %s", strings.Join(c.categories, ", "), strings.Join(f.categories, " or "))
		}
	}
	var notes []string
	switch {
	case f.minSize <= 0 && f.maxSize <= 0:
	case c.size <= 0:
		if c.final {
			notes = append(notes, "size unknown, size filters not applied")
		}
	case f.minSize > 0 && c.size < f.minSize:
		return false, fmt.Sprintf("size %s under min %s", fmtSize(c.size), fmtSize(f.minSize))
	case f.maxSize > 0 && c.size > f.maxSize:
		return false, fmt.Sprintf("size %s over max %s", fmtSize(c.size), fmtSize(f.maxSize))
	}
	if f.maxAge > 0 {
		if c.published.IsZero() {
			if c.final {
				notes = append(notes, "publication date unknown, max_age not applied")
			}
		} else if age := now.Sub(c.published); age > f.maxAge {
			return false, fmt.Sprintf("published %s ago, older than max_age %s", fmtAge(age), fmtAge(f.maxAge))
		}
	}
	if len(notes) > 0 {
		return true, "kept (" + strings.Join(notes, "; ") + ")"
	}
	return true, "kept"
}

// categoryMatch reports whether any of have matches a wanted category:
// equal ignoring case, or a newznab subcategory of a wanted parent (2040
// under 2000).
func (f *filter) categoryMatch(have []string) bool {
	for _, want := range f.categories {
		wn, werr := strconv.Atoi(want)
		for _, h := range have {
			if strings.EqualFold(strings.TrimSpace(h), want) {
				return true
			}
			if hn, err := strconv.Atoi(strings.TrimSpace(h)); werr == nil && err == nil && wn > 0 && wn%1000 == 0 && hn/1000 == wn/1000 {
				return true
			}
		}
	}
	return false
}

// fmtSize formats a byte count for people: "12 GiB", "1.5 MiB", "700 B".
func fmtSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " " + units[i]
}

// fmtAge formats a duration in days when it is at least one, else like
// time.Duration.
func fmtAge(d time.Duration) string {
	if d >= 24*time.Hour {
		days := float64(d) / float64(24*time.Hour)
		return strings.TrimSuffix(strconv.FormatFloat(days, 'f', 1, 64), ".0") + "d"
	}
	return d.Round(time.Second).String()
}

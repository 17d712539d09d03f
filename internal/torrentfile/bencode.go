package torrentfile

import (
	"errors"
	"fmt"
)

// ErrTooDeep is returned for bencode whose lists and dictionaries nest
// deeper than the caller allows. The decoders of anacrolix/torrent recurse
// once per level with no limit of their own, so 8 million nested lists in a
// 16 MB .torrent overflow the goroutine stack and kill the process; every
// byte that reaches them from the network or a file is scanned first.
var ErrTooDeep = errors.New("bencode nests too deep")

// ErrBencode is returned for bytes that are not one well-formed bencoded
// value.
var ErrBencode = errors.New("malformed bencode")

// Scan checks that data starts with one well-formed bencoded value whose
// lists and dictionaries nest at most maxDepth levels, without decoding it
// and without recursion, and returns the value's length in bytes (what
// follows it is the caller's: a ut_metadata message carries raw bytes after
// its dictionary). Dictionary keys must be strings; their order is not
// checked (the decoders accept any).
func Scan(data []byte, maxDepth int) (int, error) {
	depth := 0
	// dict[k] reports whether level k is a dictionary, and key[k] whether
	// that dictionary's next element is a key. A container closes as a
	// value of its parent (a key is always a string).
	var dict, key []bool
	i := 0
	for {
		if i >= len(data) {
			return 0, fmt.Errorf("%w: truncated at byte %d", ErrBencode, i)
		}
		c := data[i]
		if depth > 0 && dict[depth-1] && key[depth-1] && c != 'e' && (c < '0' || c > '9') {
			return 0, fmt.Errorf("%w: dictionary key at byte %d is not a string", ErrBencode, i)
		}
		switch {
		case c == 'l' || c == 'd':
			if depth >= maxDepth {
				return 0, fmt.Errorf("%w: nests deeper than %d levels at byte %d", ErrTooDeep, maxDepth, i)
			}
			if depth == len(dict) {
				dict, key = append(dict, false), append(key, false)
			}
			dict[depth], key[depth] = c == 'd', c == 'd'
			depth++
			i++
			continue
		case c == 'e':
			if depth == 0 {
				return 0, fmt.Errorf("%w: unexpected 'e' at byte %d", ErrBencode, i)
			}
			if dict[depth-1] && !key[depth-1] {
				return 0, fmt.Errorf("%w: dictionary key without a value at byte %d", ErrBencode, i)
			}
			depth--
			i++
		case c == 'i':
			j := i + 1
			if j < len(data) && data[j] == '-' {
				j++
			}
			start := j
			for j < len(data) && data[j] >= '0' && data[j] <= '9' {
				j++
			}
			if j == start || j >= len(data) || data[j] != 'e' ||
				(data[start] == '0' && (j-start > 1 || start > i+1)) { // leading zero, -0

				return 0, fmt.Errorf("%w: bad integer at byte %d", ErrBencode, i)
			}
			i = j + 1
			goto value
		case c >= '0' && c <= '9':
			j, n := i, 0
			for j < len(data) && data[j] >= '0' && data[j] <= '9' {
				if n > len(data) { // cannot fit: stop before overflowing
					return 0, fmt.Errorf("%w: string at byte %d is longer than the input", ErrBencode, i)
				}
				n = n*10 + int(data[j]-'0')
				j++
			}
			if j >= len(data) || data[j] != ':' || (data[i] == '0' && j > i+1) {
				return 0, fmt.Errorf("%w: bad string length at byte %d", ErrBencode, i)
			}
			if n > len(data)-j-1 {
				return 0, fmt.Errorf("%w: string at byte %d is longer than the input", ErrBencode, i)
			}
			i = j + 1 + n
			goto value
		default:
			return 0, fmt.Errorf("%w: unexpected byte %q at %d", ErrBencode, c, i)
		}
	value: // a value ended (after 'e': the closed container)
		if depth == 0 {
			return i, nil
		}
		if dict[depth-1] {
			key[depth-1] = !key[depth-1]
		}
	}
}

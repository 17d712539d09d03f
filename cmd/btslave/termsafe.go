package main

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// termSafe returns s with everything a terminal would act on instead of
// showing made visible: C0 controls (ESC, BEL, tab, newline, ...) and DEL
// as \x1b, C1 controls and the Unicode bidi and line controls as \u202e,
// and bytes that are not UTF-8 as \xff. Torrent names, feed titles,
// magnet dn= values, tracker URLs and error texts come from the network or
// from files; every one goes through termSafe before the CLI prints it as
// text, so that a name cannot recolour, retitle or reorder the terminal.
// JSON output needs no help: encoding/json escapes all of these.
func termSafe(s string) string { return escapeTerm(s, false) }

// termSafeLines is termSafe for multi-line text (error messages): it keeps
// newlines and tabs.
func termSafeLines(s string) string { return escapeTerm(s, true) }

func escapeTerm(s string, keepLines bool) string {
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || (unsafeRune(r) && !(keepLines && (r == '\n' || r == '\t'))) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s // the common case: nothing to escape
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case keepLines && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// unsafeRune reports whether a terminal would act on r rather than show
// it: C0 and C1 controls, DEL, the bidi marks, embeddings, overrides and
// isolates (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), and
// the line and paragraph separators U+2028 and U+2029.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r == 0x2028, r == 0x2029:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

package feeds

import (
	"bytes"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Item is one torrent a feed offers, as the feed describes it, before its
// .torrent is fetched or its magnet link parsed.
type Item struct {
	// Title is the item's title; empty in lists and watch folders.
	Title string `json:"title,omitempty"`
	// Torrent is the URL of the .torrent (possibly relative to the feed's
	// URL), or in a watch folder its path. Empty for a magnet-only item.
	Torrent string `json:"torrent,omitempty"`
	// Magnet is the item's magnet link, if it has one.
	Magnet string `json:"magnet,omitempty"`
	// InfoHash is the info hash the feed states (torznab infohash, nyaa
	// and ezRSS infoHash): 40 hex digits (v1) or 64 (v2), lower case.
	InfoHash string `json:"infohash,omitempty"`
	// Size is the content size in bytes the feed states; 0 when unknown.
	// An enclosure's length is not used: by RSS it is the .torrent's size.
	Size int64 `json:"size,omitempty"`
	// Published is the item's publication (else update) time; zero when
	// unknown. In a watch folder it is the file's modification time.
	Published time.Time `json:"published,omitzero"`
	// Categories are the item's categories: RSS/Atom category names and
	// torznab/newznab category numbers.
	Categories []string `json:"categories,omitempty"`
	// Seeders and Peers are the torznab figures (Peers counts seeders
	// too); nil when the feed gives none.
	Seeders *int `json:"seeders,omitempty"`
	Peers   *int `json:"peers,omitempty"`
	// Err is why the item cannot be used at all (it has no link, or a list
	// line is neither a URL nor a magnet link); nil for a usable item.
	Err error `json:"-"`

	local   bool   // Torrent is a file in a watch folder
	seenKey string // the .torrent URL, or a watch-folder file and version: its key in FeedState.Seen
}

// label names the item in messages: its title, else its link.
func (it *Item) label() string {
	switch {
	case it.Title != "":
		return it.Title
	case it.Torrent != "":
		return it.Torrent
	case it.Magnet != "":
		return it.Magnet
	}
	return it.InfoHash
}

// looksLikeFeed reports whether body looks like an XML (or JSON Feed) document
// rather than a plain list: its first non-blank byte after an optional BOM
// is '<' or '{'.
func looksLikeFeed(body []byte) bool {
	b := bytes.TrimLeft(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), " \t\r\n")
	return len(b) > 0 && (b[0] == '<' || b[0] == '{')
}

// ParseList parses a plain list: one .torrent URL, magnet link or bare info
// hash (40 or 64 hex digits, or 32 base32 characters) per line; blank lines
// and lines starting with '#' are skipped. A line that is none of these
// becomes an item with Err set, so one bad line spoils nothing else. Body
// that is not UTF-8 text is ErrNotFeed.
func ParseList(body []byte) ([]Item, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))
	if bytes.IndexByte(body, 0) >= 0 || !utf8.Valid(body) {
		return nil, fmt.Errorf("list is binary, not text: %w", ErrNotFeed)
	}
	var items []Item
	for n, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		items = append(items, listItem(n+1, line))
	}
	return items, nil
}

func listItem(n int, line string) Item {
	switch {
	case hasPrefixFold(line, "magnet:"):
		return Item{Magnet: line}
	case hasPrefixFold(line, "http://") || hasPrefixFold(line, "https://"):
		return Item{Torrent: line}
	}
	if h := normHash(line); h != "" {
		return Item{InfoHash: h, Magnet: hashMagnet(h, "")}
	}
	return Item{Err: fmt.Errorf("line %d: %q is not a magnet link, an http(s) .torrent URL or an info hash", n, clip(line, 80))}
}

// normHash returns s as a lower-case hex info hash (40 digits for v1, 64
// for v2), or "" when it is neither; a 32-character base32 v1 hash is
// converted.
func normHash(s string) string {
	s = strings.TrimSpace(s)
	switch len(s) {
	case 40, 64:
		if _, err := hex.DecodeString(s); err == nil {
			return strings.ToLower(s)
		}
	case 32:
		if b, err := base32.StdEncoding.DecodeString(strings.ToUpper(s)); err == nil && len(b) == 20 {
			return hex.EncodeToString(b)
		}
	}
	return ""
}

// hashMagnet makes a magnet link for a hex info hash.
func hashMagnet(h, name string) string {
	var xt string
	if len(h) == 64 {
		xt = "urn:btmh:1220" + h // multihash: sha2-256, 32 bytes
	} else {
		xt = "urn:btih:" + h
	}
	m := "magnet:?xt=" + xt
	if name != "" {
		m += "&dn=" + url.QueryEscape(name)
	}
	return m
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// isTorrentURL reports whether u names a .torrent by its path.
func isTorrentURL(u string) bool {
	if hasPrefixFold(u, "magnet:") {
		return false
	}
	p, err := url.Parse(strings.TrimSpace(u))
	if err != nil {
		return false
	}
	return strings.HasSuffix(strings.ToLower(p.Path), ".torrent")
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

package feeds

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mmcdole/gofeed"
	ext "github.com/mmcdole/gofeed/extensions"

	"github.com/btslave/btslave/config"
)

// ParseFeed parses an RSS 2.0, Atom or JSON Feed body into items. From each
// entry it takes:
//
//   - the .torrent: an enclosure of type application/x-bittorrent or whose
//     path ends in .torrent, else a link whose path ends in .torrent;
//   - the magnet link: the torznab/newznab magneturl attribute, the ezRSS
//     magnetURI, else a magnet: enclosure, link or guid;
//   - torznab and newznab attributes (<torznab:attr name=".." value="..">):
//     seeders, peers, size, infohash, magneturl and category; and the
//     nyaa and ezRSS elements infoHash, size/contentLength, seeders and
//     leechers.
//
// An entry with none of a .torrent, a magnet link or an info hash is kept
// with Err set to ErrNoLink. A body that is not a feed is ErrNotFeed;
// malformed XML is an error naming the line.
func ParseFeed(body []byte) (items []Item, err error) {
	if !looksLikeFeed(body) {
		return nil, fmt.Errorf("%w: body starts with %q, not an XML or JSON document; if it is a list of .torrent URLs or magnet links, set kind = \"list\"", ErrNotFeed, clip(string(bytes.TrimSpace(body)), 40))
	}
	// The daemon must survive any body a server sends; a panic in the
	// parser is a bad feed, not a crash.
	defer func() {
		if r := recover(); r != nil {
			items, err = nil, fmt.Errorf("parse feed: parser failed on this body: %v", r)
		}
	}()
	f, err := gofeed.NewParser().Parse(bytes.NewReader(body))
	if errors.Is(err, gofeed.ErrFeedTypeNotDetected) {
		return nil, fmt.Errorf("%w: the document is not RSS, Atom or JSON Feed", ErrNotFeed)
	}
	if err != nil {
		return nil, fmt.Errorf("parse feed: %w", err)
	}
	items = make([]Item, 0, len(f.Items))
	for _, gi := range f.Items {
		if gi != nil {
			items = append(items, itemOf(gi))
		}
	}
	return items, nil
}

// itemOf converts one gofeed entry.
func itemOf(gi *gofeed.Item) Item {
	it := Item{Title: strings.TrimSpace(gi.Title)}
	switch {
	case gi.PublishedParsed != nil:
		it.Published = gi.PublishedParsed.UTC()
	case gi.UpdatedParsed != nil:
		it.Published = gi.UpdatedParsed.UTC()
	}
	for _, c := range gi.Categories {
		it.addCategory(c)
	}

	var x extras
	for _, byName := range gi.Extensions {
		for _, exts := range byName {
			for i := range exts {
				x.walk(&exts[i], 0)
			}
		}
	}
	for k, v := range gi.Custom {
		x.element(k, v)
	}

	for _, c := range x.categories {
		it.addCategory(c)
	}
	it.Seeders, it.Peers = x.seeders, x.peers
	if x.leechers != nil && it.Peers == nil {
		p := *x.leechers
		if it.Seeders != nil {
			p += *it.Seeders
		}
		it.Peers = &p
	}
	it.Size = x.size
	it.InfoHash = normHash(x.infohash)
	it.Magnet = x.magnet

	// The .torrent: a typed or .torrent enclosure, else a .torrent link.
	for _, e := range gi.Enclosures {
		if e == nil {
			continue
		}
		u := strings.TrimSpace(e.URL)
		switch {
		case hasPrefixFold(u, "magnet:"):
			if it.Magnet == "" {
				it.Magnet = u
			}
		case u != "" && it.Torrent == "" && (strings.HasPrefix(strings.ToLower(e.Type), "application/x-bittorrent") || isTorrentURL(u)):
			it.Torrent = u
		}
	}
	links := append([]string{gi.Link}, gi.Links...)
	for _, l := range links {
		l = strings.TrimSpace(l)
		switch {
		case hasPrefixFold(l, "magnet:"):
			if it.Magnet == "" {
				it.Magnet = l
			}
		case it.Torrent == "" && isTorrentURL(l):
			it.Torrent = l
		}
	}
	if g := strings.TrimSpace(gi.GUID); it.Magnet == "" && hasPrefixFold(g, "magnet:") {
		it.Magnet = g
	}

	if it.Torrent == "" && it.Magnet == "" {
		if it.InfoHash != "" {
			it.Magnet = hashMagnet(it.InfoHash, it.Title)
		} else {
			it.Err = ErrNoLink
		}
	}
	return it
}

func (it *Item) addCategory(c string) {
	c = strings.TrimSpace(c)
	if c == "" {
		return
	}
	for _, have := range it.Categories {
		if strings.EqualFold(have, c) {
			return
		}
	}
	it.Categories = append(it.Categories, c)
}

// extras collects the torrent elements of the namespaces torrent sites
// use, whatever prefix the feed binds them to.
type extras struct {
	seeders, peers, leechers *int
	size                     int64
	infohash, magnet         string
	categories               []string
}

// maxExtDepth bounds the walk through nested extension elements.
const maxExtDepth = 8

func (x *extras) walk(e *ext.Extension, depth int) {
	if depth > maxExtDepth {
		return
	}
	if strings.EqualFold(e.Name, "attr") {
		x.attr(e.Attrs["name"], e.Attrs["value"])
	} else {
		x.element(e.Name, e.Value)
	}
	for _, children := range e.Children {
		for i := range children {
			x.walk(&children[i], depth+1)
		}
	}
}

// attr takes a torznab/newznab attribute.
func (x *extras) attr(name, value string) {
	value = strings.TrimSpace(value)
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "seeders":
		x.seeders = parseCount(value, x.seeders)
	case "peers":
		x.peers = parseCount(value, x.peers)
	case "leechers":
		x.leechers = parseCount(value, x.leechers)
	case "size":
		if n := parseSize(value); n > 0 {
			x.size = n
		}
	case "infohash":
		if x.infohash == "" {
			x.infohash = value
		}
	case "magneturl":
		if x.magnet == "" && hasPrefixFold(value, "magnet:") {
			x.magnet = value
		}
	case "category":
		if value != "" {
			x.categories = append(x.categories, value)
		}
	}
}

// element takes a plain element (nyaa:seeders, ezRSS contentLength, ...).
func (x *extras) element(name, value string) {
	switch strings.ToLower(name) {
	case "seeders", "peers", "leechers", "size", "infohash":
		x.attr(name, value)
	case "contentlength":
		x.attr("size", value)
	case "magneturi":
		x.attr("magneturl", value)
	}
}

func parseCount(s string, old *int) *int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return old
	}
	return &n
}

// parseSize reads a byte count, or a size with a unit such as "1.2 GiB"
// (nyaa); 0 when it is neither.
func parseSize(s string) int64 {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return max(n, 0)
	}
	if v, err := config.ParseSize(s); err == nil {
		return int64(v)
	}
	return 0
}

package publish

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Host serves the published torrents, read-only, to anyone: it is meant
// for a public listener apart from the local API.
//
//	GET /t/<infohash>.torrent  the .torrent (v1 or v2 infohash, hex)
//	GET /feed.xml              RSS 2.0 of everything published, newest first
//
// Each feed item has the .torrent as its enclosure and the infohash, size
// and magnet link as ezRSS elements (torrent:infoHash, contentLength,
// magnetURI), which btslave's own feed reader and most others take.
type Host struct {
	Registry *Registry
	// Title names the feed; default "btslave".
	Title string
	// MaxItems bounds the feed; default 100.
	MaxItems int
}

func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch p := r.URL.Path; {
	case p == "/feed.xml":
		h.feed(w, r)
	case strings.HasPrefix(p, "/t/") && strings.HasSuffix(p, ".torrent"):
		ih := strings.TrimSuffix(strings.TrimPrefix(p, "/t/"), ".torrent")
		if !isHex(ih, 40) && !isHex(ih, 64) {
			http.NotFound(w, r)
			return
		}
		rec, ok := h.Registry.Get(ih)
		b, err := h.Registry.TorrentFile(ih)
		if !ok || err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-bittorrent")
		w.Header().Set("Content-Disposition", `attachment; filename="`+rec.InfoHash+`.torrent"`)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

type rss struct {
	XMLName xml.Name   `xml:"rss"`
	Version string     `xml:"version,attr"`
	NS      string     `xml:"xmlns:torrent,attr"`
	Channel rssChannel `xml:"channel"`
}

type rssChannel struct {
	Title       string    `xml:"title"`
	Link        string    `xml:"link"`
	Description string    `xml:"description"`
	Items       []rssItem `xml:"item"`
}

type rssItem struct {
	Title     string       `xml:"title"`
	Link      string       `xml:"link"`
	GUID      rssGUID      `xml:"guid"`
	PubDate   string       `xml:"pubDate"`
	Enclosure rssEnclosure `xml:"enclosure"`
	InfoHash  string       `xml:"torrent:infoHash"`
	Length    int64        `xml:"torrent:contentLength"`
	Magnet    string       `xml:"torrent:magnetURI"`
}

type rssGUID struct {
	IsPermaLink bool   `xml:"isPermaLink,attr"`
	Value       string `xml:",chardata"`
}

type rssEnclosure struct {
	URL    string `xml:"url,attr"`
	Length int    `xml:"length,attr"`
	Type   string `xml:"type,attr"`
}

// baseURL is the scheme and host the request came to, for absolute links.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (h *Host) feed(w http.ResponseWriter, r *http.Request) {
	base := baseURL(r)
	max := h.MaxItems
	if max <= 0 {
		max = 100
	}
	title := h.Title
	if title == "" {
		title = "btslave"
	}
	doc := rss{Version: "2.0", NS: "http://xmlns.ezrss.it/0.1/", Channel: rssChannel{
		Title: title, Link: base + "/feed.xml", Description: "torrents published with btslave"}}
	for i, rec := range h.Registry.List() {
		if i == max {
			break
		}
		b, err := h.Registry.TorrentFile(rec.InfoHash)
		if err != nil {
			continue
		}
		url := base + "/t/" + rec.InfoHash + ".torrent"
		doc.Channel.Items = append(doc.Channel.Items, rssItem{
			Title: rec.Name, Link: url, GUID: rssGUID{Value: "urn:btih:" + rec.InfoHash},
			PubDate:   rec.Published.UTC().Format(time.RFC1123Z),
			Enclosure: rssEnclosure{URL: url, Length: len(b), Type: "application/x-bittorrent"},
			InfoHash:  rec.InfoHash, Length: rec.Size, Magnet: rec.Magnet,
		})
	}
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/rss+xml; charset=utf-8")
	w.Write([]byte(xml.Header))
	w.Write(out)
}

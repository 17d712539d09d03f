package scrape

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/repeater/announce"
)

// scrapeURL derives the scrape URL from an HTTP announce URL (BEP 48): the
// last path segment must begin with "announce", which is replaced by
// "scrape"; the query is kept as it is, the fragment dropped. Otherwise
// the tracker has no scrape: ErrNoScrape.
func scrapeURL(u *url.URL) (string, error) {
	p := u.EscapedPath()
	i := strings.LastIndexByte(p, '/')
	if i < 0 || !strings.HasPrefix(p[i+1:], "announce") {
		return "", ErrNoScrape
	}
	sp := p[:i+1] + "scrape" + p[i+1+len("announce"):]
	su := *u
	su.Fragment, su.RawFragment = "", ""
	var err error
	if su.Path, err = url.PathUnescape(sp); err != nil {
		return "", fmt.Errorf("%w: path: %v", ErrBadURL, err)
	}
	su.RawPath = sp
	return su.String(), nil
}

// hashParam is one hash's query parameter, opentracker-safe.
func hashParam(h metainfo.Hash) string { return "info_hash=" + announce.EscapeBytes(h[:]) }

// httpBatches splits hashes into requests of at most perReq hashes whose
// URL (base plus parameters) stays within maxURLBytes.
func httpBatches(base string, hashes []metainfo.Hash, perReq int) [][]metainfo.Hash {
	var out [][]metainfo.Hash
	start, size := 0, len(base)
	for i, h := range hashes {
		n := len(hashParam(h)) + 1 // & or ?
		if i > start && (i-start >= perReq || size+n > maxURLBytes) {
			out = append(out, hashes[start:i])
			start, size = i, len(base)
		}
		size += n
	}
	if start < len(hashes) {
		out = append(out, hashes[start:])
	}
	return out
}

// requestURL is base with one info_hash parameter per hash appended to
// its query.
func requestURL(base string, hashes []metainfo.Hash) string {
	var b strings.Builder
	b.Grow(len(base) + 64*len(hashes))
	b.WriteString(base)
	sep := byte('?')
	if strings.IndexByte(base, '?') >= 0 {
		sep = '&'
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = 0
		}
	}
	for _, h := range hashes {
		if sep != 0 {
			b.WriteByte(sep)
		}
		sep = '&'
		b.WriteString(hashParam(h))
	}
	return b.String()
}

// httpScrape sends one HTTP scrape for hashes and puts a Result for every
// one of them into out. It returns how many hashes it answered: all.
func (s *Scraper) httpScrape(ctx context.Context, t *tracker, hashes []metainfo.Hash, out map[metainfo.Hash]Result) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, requestURL(t.scrapeURL, hashes), nil)
	if err != nil {
		return 0, stripURLError(err)
	}
	req.Header.Set("User-Agent", s.o.UserAgent)
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, stripURLError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPReplyBytes+1))
	if err != nil {
		return 0, fmt.Errorf("reading reply: %w", err)
	}
	if len(body) > maxHTTPReplyBytes {
		return 0, fmt.Errorf("%w: reply larger than %d bytes", errMalformed, maxHTTPReplyBytes)
	}
	if resp.StatusCode != http.StatusOK {
		// Some trackers send a failure reason with another status.
		if _, err := parseHTTPReply(body); err != nil {
			var fe *FailureError
			if errors.As(err, &fe) {
				return 0, fmt.Errorf("HTTP %s: %w", resp.Status, err)
			}
		}
		return 0, fmt.Errorf("HTTP %s: %q", resp.Status, truncate(body, 200))
	}
	files, err := parseHTTPReply(body)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	for _, h := range hashes {
		e, ok := files[h]
		out[h] = e.result(t.url, now, ok)
	}
	return len(hashes), nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

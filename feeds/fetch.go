package feeds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// maxRedirects is how many redirects one fetch follows.
const maxRedirects = 5

// fetcher makes one run's HTTP requests: http(s) only, few redirects, a
// timeout per fetch, a cap on every body, enforced while reading, and no
// private addresses reached from a public feed (see guard).
type fetcher struct {
	client     *http.Client
	userAgent  string
	timeout    time.Duration
	maxFeed    int64
	maxTorrent int64
	policy     *addrPolicy // this run's; every request carries it
}

// newHTTPClient returns base (or a fresh client when nil) with the
// redirect policy set and its transport guarded: a copy of base's
// *http.Transport (the default one when nil) that keeps public feeds off
// private addresses. Another kind of RoundTripper is used as it is,
// without that check. isPublic classifies addresses.
func newHTTPClient(base *http.Client, isPublic func(netip.Addr) bool) *http.Client {
	var c http.Client
	if base != nil {
		c = *base
	}
	switch t := c.Transport.(type) {
	case nil:
		c.Transport = newGuard(nil, isPublic)
	case *http.Transport:
		c.Transport = newGuard(t, isPublic)
	}
	c.CheckRedirect = checkRedirect
	return &c
}

// magnetRedirect is a redirect to a magnet link, which some indexers
// (Jackett, Prowlarr) answer for a download link of a magnet-only torrent.
type magnetRedirect struct{ uri string }

func (m *magnetRedirect) Error() string { return "redirected to a magnet link" }

func checkRedirect(req *http.Request, via []*http.Request) error {
	if strings.EqualFold(req.URL.Scheme, "magnet") {
		return &magnetRedirect{uri: req.URL.String()}
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to %s: %w", redactURL(req.URL.String()), ErrBadURL)
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return nil
}

// response is one fetched body.
type response struct {
	body               []byte
	etag, lastModified string
	notModified        bool
	magnet             string   // the server redirected to this magnet link
	url                *url.URL // after redirects; relative links resolve against it
}

// conditional holds the validators of a conditional GET.
type conditional struct{ etag, lastModified string }

// get fetches rawURL, reading at most limit bytes of body; what names the
// body in errors ("feed body", ".torrent").
func (f *fetcher) get(ctx context.Context, rawURL string, limit int64, what string, cond conditional) (*response, error) {
	u, err := checkURL(rawURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, policyKey{}, f.policy), f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", redactURL(rawURL), err)
	}
	req.Header.Set("User-Agent", f.userAgent)
	if what == ".torrent" {
		req.Header.Set("Accept", "application/x-bittorrent, */*;q=0.5")
	} else {
		req.Header.Set("Accept", "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, text/plain;q=0.8, */*;q=0.5")
	}
	if cond.etag != "" {
		req.Header.Set("If-None-Match", cond.etag)
	}
	if cond.lastModified != "" {
		req.Header.Set("If-Modified-Since", cond.lastModified)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		var mr *magnetRedirect
		if errors.As(err, &mr) {
			return &response{magnet: mr.uri, url: u}, nil
		}
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("GET %s: timed out after %s", redactURL(rawURL), f.timeout)
		}
		if ra, ok := errors.AsType[*refusedAddr](err); ok {
			return nil, refusal(rawURL, u, err, ra)
		}
		return nil, fmt.Errorf("GET %s: %w", redactURL(rawURL), unwrapURLError(err))
	}
	defer resp.Body.Close()
	r := &response{url: resp.Request.URL}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		r.notModified = true
		return r, nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, fmt.Errorf("GET %s: %w", redactURL(rawURL), &statusError{code: resp.StatusCode, status: resp.Status})
	case resp.ContentLength > limit:
		return nil, fmt.Errorf("GET %s: %s is %s, over the %s cap: %w", redactURL(rawURL), what, fmtSize(resp.ContentLength), fmtSize(limit), ErrTooLarge)
	}
	// Read one byte past the cap to tell "exactly the cap" from "more";
	// whatever the server would send after it is never read.
	r.body, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("GET %s: reading %s timed out after %s", redactURL(rawURL), what, f.timeout)
		}
		return nil, fmt.Errorf("GET %s: read %s: %w", redactURL(rawURL), what, err)
	}
	if int64(len(r.body)) > limit {
		return nil, fmt.Errorf("GET %s: %s over %s cap: %w", redactURL(rawURL), what, fmtSize(limit), ErrTooLarge)
	}
	r.etag = resp.Header.Get("ETag")
	r.lastModified = resp.Header.Get("Last-Modified")
	return r, nil
}

// refusal says which request of a fetch of rawURL (u) was refused and
// why: "GET URL: redirect to 127.0.0.1 refused: private address from a
// public feed", or "link to" when rawURL itself went there.
func refusal(rawURL string, u *url.URL, err error, ra *refusedAddr) error {
	how, target := "link to", u
	var ue *url.Error
	if errors.As(err, &ue) {
		if t, perr := url.Parse(ue.URL); perr == nil && t.String() != u.String() {
			how, target = "redirect to", t
		}
	}
	at := ra.ip.String()
	if h := target.Hostname(); h != "" && h != at {
		if hip, perr := netip.ParseAddr(h); perr != nil || hip.Unmap() != ra.ip {
			at = h + " (" + at + ")"
		}
	}
	return fmt.Errorf("GET %s: %s %s refused: %w", redactURL(rawURL), how, at, ErrPrivateAddress)
}

// statusError is an HTTP answer other than 2xx and 304.
type statusError struct {
	code   int
	status string
}

func (e *statusError) Error() string { return "HTTP " + e.status }
func (e *statusError) Unwrap() error { return ErrHTTPStatus }

// transient reports whether an item's error may go away by itself (a
// server error, a timeout, a dropped connection), so that the item is
// worth trying again while the feed is unchanged.
func transient(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.code >= 500 || se.code == http.StatusTooManyRequests || se.code == http.StatusRequestTimeout
	}
	for _, permanent := range []error{ErrNoLink, ErrBadTorrent, ErrBadMagnet, ErrHashMismatch, ErrBadURL, ErrTooLarge, ErrHTTPStatus, ErrPrivateAddress} {
		if errors.Is(err, permanent) {
			return false
		}
	}
	return true
}

// checkURL accepts absolute http(s) URLs only.
func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q: %w", clip(redactURL(raw), 200), ErrBadURL)
	}
	return u, nil
}

// unwrapURLError drops url.Error's "Get URL:" prefix, which would repeat
// the URL (unredacted) in our message.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// secretParam matches query parameters that carry credentials (Jackett's
// apikey, private trackers' passkey, ...).
var secretParam = regexp.MustCompile(`(?i)key|token|pass|auth|secret|sig|session|uid`)

// redactURL hides the password and credential-like query values of a URL
// so that it can be logged.
func redactURL(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme == "magnet" {
		return raw
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			if secretParam.MatchString(k) {
				q[k] = []string{"REDACTED"}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

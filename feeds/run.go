package feeds

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/btslave/btslave/config"
)

// maxTorrentFetches is how many .torrent files one fetch of a feed
// downloads; the rest wait for the next run, so a huge list cannot turn
// one run into thousands of requests.
const maxTorrentFetches = 100

// Result is the outcome of one fetch of one feed.
type Result struct {
	// Feed is the feed's name.
	Feed string `json:"feed"`
	// NotModified is set when the server answered 304: nothing new, and
	// Items is empty.
	NotModified bool `json:"not_modified,omitempty"`
	// Items has one result per item the feed listed, in feed order.
	Items []ItemResult `json:"items"`
}

// ItemResult says what became of one item.
type ItemResult struct {
	// Item is the item as the feed listed it, its .torrent link made
	// absolute.
	Item Item `json:"item"`
	// Kept is set when the item passed the feed's filters and resolved to
	// a valid torrent.
	Kept bool `json:"kept"`
	// Why explains the decision: "kept", "kept (size unknown, ...)",
	// "excluded by exclude /beta/ ...", "size 12 GiB over max 10 GiB", or
	// "error: ..." when the item could not be used.
	Why string `json:"why"`
	// Err is the item's error (a bad .torrent, a failed download); it
	// spoils this item only.
	Err error `json:"-"`
	// Entry is what the item adds to the catalog, when kept.
	Entry *Entry `json:"entry,omitempty"`
	// New is set when the entry was new to the catalog (never in Test).
	New bool `json:"new,omitempty"`

	seenAs *SeenTorrent // the resolved torrent, for FeedState.Seen
	retry  bool         // failed or put off for now; worth another try
}

// SeenTorrent is what FeedState remembers of a .torrent fetched before:
// enough to filter it again without fetching it.
type SeenTorrent struct {
	InfoHashV1 string `json:"v1,omitempty"`
	InfoHashV2 string `json:"v2,omitempty"`
	Name       string `json:"name,omitempty"`
	Size       int64  `json:"size,omitempty"`
}

func seenOf(e *Entry) SeenTorrent {
	return SeenTorrent{InfoHashV1: e.InfoHashV1, InfoHashV2: e.InfoHashV2, Name: e.Name, Size: e.Size}
}

// entry is a sighting of the torrent: hashes, name and size.
func (s *SeenTorrent) entry() Entry {
	return Entry{InfoHashV1: s.InfoHashV1, InfoHashV2: s.InfoHashV2, Name: s.Name, Size: s.Size}
}

// lookup finds a .torrent fetched in an earlier run.
func (st *FeedState) lookup(key string) (SeenTorrent, bool) {
	if st == nil || key == "" {
		return SeenTorrent{}, false
	}
	s, ok := st.Seen[key]
	return s, ok && (s.InfoHashV1 != "" || s.InfoHashV2 != "")
}

// Counts returns how many items were kept, new to the catalog, and in
// error.
func (r *Result) Counts() (kept, isNew, errs int) {
	for i := range r.Items {
		it := &r.Items[i]
		if it.Kept {
			kept++
		}
		if it.New {
			isNew++
		}
		if it.Err != nil {
			errs++
		}
	}
	return kept, isNew, errs
}

// CheckFeed validates a feed definition and fills in its defaults, as the
// configuration does for [[feeds.feed]]: the name defaults to the URL or
// folder, the schedule to defaults.Schedule, and the kind of a folder to
// "watch". Kind "" on a URL means: sniff the body (XML is a feed,
// anything else a list). Errors wrap ErrBadFeed.
func CheckFeed(f *config.Feed, defaults config.Feeds) error {
	f.URL, f.Dir, f.Name = strings.TrimSpace(f.URL), strings.TrimSpace(f.Dir), strings.TrimSpace(f.Name)
	bad := func(format string, args ...any) error {
		name := f.Name
		if name == "" {
			name = f.URL + f.Dir
		}
		return fmt.Errorf("feed %q: %w: %s", name, ErrBadFeed, fmt.Sprintf(format, args...))
	}
	switch {
	case f.URL == "" && f.Dir == "":
		return bad("needs url (RSS/Atom/torznab or a list) or dir (a watch folder)")
	case f.URL != "" && f.Dir != "":
		return bad("set url or dir, not both")
	case f.URL != "":
		if _, err := checkURL(f.URL); err != nil {
			return bad("url %q is not an http(s) URL", redactURL(f.URL))
		}
	}
	if f.Kind == "" && f.Dir != "" {
		f.Kind = "watch"
	}
	switch f.Kind {
	case "", "rss", "list":
		if f.URL == "" {
			return bad("kind %q needs url", f.Kind)
		}
	case "watch":
		if f.Dir == "" {
			return bad("kind \"watch\" needs dir")
		}
	default:
		return bad("kind %q is not one of \"rss\", \"list\", \"watch\"", f.Kind)
	}
	if f.Name == "" {
		f.Name = f.URL + f.Dir
	}
	if f.Schedule == "" {
		f.Schedule = defaults.Schedule
	}
	if _, err := f.Schedule.Schedule(); err != nil {
		return bad("schedule %q: %v", f.Schedule, err)
	}
	if _, err := newFilter(f); err != nil {
		return bad("%v", err)
	}
	if f.MinSize < 0 || f.MaxSize < 0 {
		return bad("sizes must not be negative")
	}
	if f.MaxSize > 0 && f.MinSize > f.MaxSize {
		return bad("min_size %v is larger than max_size %v", f.MinSize, f.MaxSize)
	}
	return nil
}

// run is one fetch of one feed.
type run struct {
	feed    config.Feed
	filter  *filter
	fetch   *fetcher
	now     time.Time
	catalog *Catalog   // nil in Test: nothing is stored
	state   *FeedState // nil in Test: no conditional GET, no Seen

	fetches int // .torrent downloads so far
}

// do fetches and parses the feed and resolves its items. It returns an
// error only when the feed as a whole failed; items fail on their own.
// With a catalog, kept entries are stored and state is updated (the
// caller stores it).
func (r *run) do(ctx context.Context) (*Result, error) {
	res := &Result{Feed: r.feed.Name}
	items, err := r.load(ctx, res)
	if err != nil || res.NotModified {
		return res, err
	}
	res.Items = make([]ItemResult, 0, len(items))
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res.Items = append(res.Items, r.item(ctx, it))
	}
	if r.catalog == nil {
		return res, nil
	}
	if slices.ContainsFunc(res.Items, func(ir ItemResult) bool { return ir.retry }) {
		// A 304 next time would skip the items that failed for now.
		r.state.ETag, r.state.LastModified = "", ""
	}
	var entries []Entry
	var idx []int
	for i := range res.Items {
		if e := res.Items[i].Entry; e != nil {
			entries = append(entries, *e)
			idx = append(idx, i)
		}
	}
	stored, isNew, err := r.catalog.putMany(entries)
	if err != nil {
		return nil, err
	}
	seen := map[string]SeenTorrent{}
	for j, i := range idx {
		res.Items[i].Entry = &stored[j]
		res.Items[i].New = isNew[j]
	}
	for i := range res.Items {
		if ir := &res.Items[i]; ir.Item.seenKey != "" && ir.seenAs != nil {
			seen[ir.Item.seenKey] = *ir.seenAs
		}
	}
	r.state.Seen = seen
	return res, nil
}

// load fetches and parses the feed body, or scans the watch folder.
func (r *run) load(ctx context.Context, res *Result) ([]Item, error) {
	if r.feed.Dir != "" {
		return scanDir(r.feed.Dir, r.fetch.maxFeed)
	}
	var cond conditional
	if r.state != nil && r.state.URL == r.feed.URL {
		cond = conditional{etag: r.state.ETag, lastModified: r.state.LastModified}
	}
	resp, err := r.fetch.get(ctx, r.feed.URL, r.fetch.maxFeed, "feed body", cond)
	if err != nil {
		return nil, err
	}
	if resp.notModified {
		res.NotModified = true
		return nil, nil
	}
	if resp.magnet != "" {
		return nil, fmt.Errorf("GET %s: %w: the feed URL redirects to a magnet link", redactURL(r.feed.URL), ErrNotFeed)
	}
	var items []Item
	kind := r.feed.Kind
	if kind == "" {
		kind = "list"
		if looksLikeFeed(resp.body) {
			kind = "rss"
		}
	}
	if kind == "list" {
		items, err = ParseList(resp.body)
	} else {
		items, err = ParseFeed(resp.body)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redactURL(r.feed.URL), err)
	}
	if r.state != nil {
		r.state.URL, r.state.ETag, r.state.LastModified = r.feed.URL, resp.etag, resp.lastModified
	}
	for i := range items {
		it := &items[i]
		if it.Torrent == "" || it.Err != nil {
			continue
		}
		ref, err := url.Parse(it.Torrent)
		if err != nil {
			it.Err = fmt.Errorf(".torrent link %q: %w", clip(it.Torrent, 100), ErrBadURL)
			continue
		}
		it.Torrent = resp.url.ResolveReference(ref).String()
		it.seenKey = it.Torrent
	}
	return items, nil
}

// item filters and resolves one item.
func (r *run) item(ctx context.Context, it Item) ItemResult {
	ir := ItemResult{Item: it}
	fail := func(err error) ItemResult {
		ir.Err = err
		ir.Why = "error: " + err.Error()
		return ir
	}
	if it.Err != nil {
		return fail(it.Err)
	}
	pre := candidate{title: it.Title, size: it.Size, published: it.Published, categories: it.Categories}
	if ok, why := r.filter.check(pre, r.now); !ok {
		ir.Why = why
		return ir
	}

	// A .torrent fetched in an earlier run is judged by what it held then,
	// and fetched again only if it is wanted but not in the catalog.
	if s, ok := r.state.lookup(it.seenKey); ok && r.catalog != nil {
		e := s.entry()
		r.complete(&e, &it)
		ir.seenAs = &s
		kept, why := r.filter.check(r.final(&e, &it), r.now)
		if !kept {
			ir.Why = why
			return ir
		}
		if _, found, err := r.catalog.Get(e.Key()); err == nil && found {
			ir.Kept, ir.Why, ir.Entry = true, why, &e
			return ir
		}
	}

	e, note, err := r.resolve(ctx, &it)
	if errors.Is(err, errPutOff) {
		ir.Why = "put off to the next run: " + err.Error()
		ir.retry = true
		return ir
	}
	if err != nil {
		ir.retry = transient(err)
		return fail(err)
	}
	if h := it.InfoHash; h != "" {
		if (len(h) == 40 && e.InfoHashV1 != "" && h != e.InfoHashV1) || (len(h) == 64 && e.InfoHashV2 != "" && h != e.InfoHashV2) {
			return fail(fmt.Errorf("%w: feed says %s, the torrent is %s", ErrHashMismatch, h, e.Key()))
		}
	}
	r.complete(&e, &it)
	if note == "" {
		// Remembered so that the .torrent is not fetched again; after a
		// fallback to the magnet link it is tried again next time.
		s := seenOf(&e)
		ir.seenAs = &s
	}
	ir.Kept, ir.Why = r.filter.check(r.final(&e, &it), r.now)
	if note != "" {
		ir.Why += "; " + note
	}
	if ir.Kept {
		ir.Entry = &e
	}
	return ir
}

// final is the candidate the filters judge after resolution.
func (r *run) final(e *Entry, it *Item) candidate {
	title := it.Title
	if title == "" {
		title = e.Name
	}
	return candidate{title: title, size: e.Size, published: it.Published, categories: it.Categories, final: true}
}

// complete adds the feed's data to a resolved entry.
func (r *run) complete(e *Entry, it *Item) {
	e.Title = it.Title
	if e.Name == "" {
		e.Name = it.Title
	}
	if e.Size <= 0 {
		e.Size = it.Size
	}
	e.Published = it.Published
	e.Categories = append([]string(nil), it.Categories...)
	e.Seeders, e.Peers = it.Seeders, it.Peers
	e.Feeds = []string{r.feed.Name}
	e.FirstSeen, e.LastSeen = r.now, r.now
}

// errPutOff marks an item left for the next run.
var errPutOff = errors.New("this run fetched its share of .torrent files")

// resolve turns an item into an entry: it reads or downloads the .torrent,
// else parses the magnet link. When the .torrent fails but the item has a
// magnet link, the magnet is used and note says why.
func (r *run) resolve(ctx context.Context, it *Item) (e Entry, note string, err error) {
	if it.Torrent == "" {
		e, err = ParseMagnet(it.Magnet)
		return e, "", err
	}
	if it.local {
		data, err := readTorrentFile(it.Torrent, r.fetch.maxTorrent)
		if err == nil {
			e, err = ParseTorrent(data)
		}
		if err != nil {
			return Entry{}, "", fmt.Errorf("%s: %w", it.Torrent, err)
		}
		return e, "", nil
	}
	if r.fetches >= maxTorrentFetches {
		return Entry{}, "", fmt.Errorf("%w (%d)", errPutOff, maxTorrentFetches)
	}
	r.fetches++
	resp, err := r.fetch.get(ctx, it.Torrent, r.fetch.maxTorrent, ".torrent", conditional{})
	switch {
	case err != nil:
	case resp.magnet != "":
		e, err = ParseMagnet(resp.magnet)
	case resp.notModified:
		err = fmt.Errorf("GET %s: HTTP 304 to an unconditional request: %w", redactURL(it.Torrent), ErrHTTPStatus)
	default:
		if e, err = ParseTorrent(resp.body); err != nil {
			err = fmt.Errorf("%s: %w", redactURL(it.Torrent), err)
		}
	}
	if err != nil && it.Magnet != "" {
		if m, merr := ParseMagnet(it.Magnet); merr == nil {
			return m, "using the magnet link: .torrent failed: " + err.Error(), nil
		}
	}
	return e, "", err
}

// readTorrentFile reads a .torrent from a watch folder, up to limit bytes.
func readTorrentFile(path string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf(".torrent is %s, over the %s cap: %w", fmtSize(fi.Size()), fmtSize(limit), ErrTooLarge)
	}
	return readCapped(path, limit, ".torrent")
}

package api

import "time"

// Feed is one feed, as GET /api/v1/feeds lists it: its definition and the
// state of its fetches.
type Feed struct {
	Name string `json:"name"`
	// Kind is "rss", "list" or "watch"; "" means sniffed.
	Kind string `json:"kind,omitempty"`
	// Source is the URL (credentials hidden) or the watch folder.
	Source string `json:"source"`
	// Added is set for a feed added at run time ("btslave feeds add"),
	// clear for one from the configuration file.
	Added    bool   `json:"added"`
	Schedule string `json:"schedule"`
	Include  string `json:"include,omitempty"`
	Exclude  string `json:"exclude,omitempty"`
	Category string `json:"category,omitempty"`
	MinSize  int64  `json:"min_size,omitempty"`
	MaxSize  int64  `json:"max_size,omitempty"`
	MaxAge   string `json:"max_age,omitempty"`

	Running     bool      `json:"running,omitempty"`
	Fetches     int       `json:"fetches"`
	FetchErrors int       `json:"fetch_errors"`
	LastFetch   time.Time `json:"last_fetch,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	NotModified bool      `json:"not_modified,omitempty"`
	// Items, Kept, New and ItemErrors count the last successful fetch's
	// items: listed, kept by the filters, new to the catalog, failed.
	Items      int       `json:"items"`
	Kept       int       `json:"kept"`
	New        int       `json:"new"`
	ItemErrors int       `json:"item_errors,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
	Failures   int       `json:"failures,omitempty"`
	NextRun    time.Time `json:"next_run,omitzero"`
}

// FeedRequest adds a feed (POST /api/v1/feeds): URL or Dir, the rest
// optional. Sizes ("100MiB") and MaxAge ("7d") are in the configuration's
// notation.
type FeedRequest struct {
	Name     string `json:"name,omitempty"`
	URL      string `json:"url,omitempty"`
	Dir      string `json:"dir,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Schedule string `json:"schedule,omitempty"`
	Include  string `json:"include,omitempty"`
	Exclude  string `json:"exclude,omitempty"`
	Category string `json:"category,omitempty"`
	MinSize  string `json:"min_size,omitempty"`
	MaxSize  string `json:"max_size,omitempty"`
	MaxAge   string `json:"max_age,omitempty"`
}

// FeedItem is one torrent a feed put in the catalog (GET
// /api/v1/feeds/{name}/items), newest first.
type FeedItem struct {
	InfoHash  string    `json:"infohash"`
	Name      string    `json:"name"`
	Title     string    `json:"title,omitempty"`
	Size      int64     `json:"size,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	Published time.Time `json:"published,omitzero"`
	Seeders   *int      `json:"seeders,omitempty"`
	Peers     *int      `json:"peers,omitempty"`
}

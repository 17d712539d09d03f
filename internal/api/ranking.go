package api

import "time"

// Ranking is the answer of GET /api/v1/ranking: the autopilot's last
// ranking of the catalog by need, with each score's parts (what "btslave
// swarms" prints).
type Ranking struct {
	// Enabled is auto.enabled; Note says why nothing is joined when the
	// autopilot is off or has no slots.
	Enabled bool   `json:"enabled"`
	Note    string `json:"note,omitempty"`
	// At is when the ranking was made (zero before the first), Took how
	// long it took, Next when the next is due.
	At       time.Time `json:"at,omitzero"`
	Took     Seconds   `json:"took_seconds"`
	Interval Seconds   `json:"interval_seconds"`
	Next     time.Time `json:"next,omitzero"`
	// Slots is repeater.max_swarms; OwnerSwarms are taken by swarms the
	// owner added, AutoSwarms by the autopilot.
	Slots       int `json:"slots"`
	OwnerSwarms int `json:"owner_swarms"`
	AutoSwarms  int `json:"auto_swarms"`
	// MinScore and Hysteresis are auto.min_score and auto.hysteresis.
	MinScore   float64 `json:"min_score"`
	Hysteresis float64 `json:"hysteresis"`
	// Error is why the last ranking failed (the catalog could not be
	// read); the swarms are then those of the ranking before.
	Error string `json:"error,omitempty"`
	// Swarms are ranked by score, highest first; those without figures
	// come last.
	Swarms []RankedSwarm `json:"swarms"`
}

// RankedSwarm is one swarm in the ranking.
type RankedSwarm struct {
	Rank     int    `json:"rank"`
	InfoHash string `json:"infohash"`
	Name     string `json:"name"`
	// Score = Need × Reach × Age (docs/design.md, "Need score").
	Score float64 `json:"score"`
	Need  float64 `json:"need"`
	Reach float64 `json:"reach"`
	Age   float64 `json:"age"`
	// Seeders and Downloaders are what the need counts, after the
	// corrections: ourselves out (SelfSubtracted), partial seeds we saw
	// out of an incomplete count (PartialSubtracted), at least what we see.
	Seeders           int64 `json:"seeders"`
	Downloaders       int64 `json:"downloaders"`
	SelfSubtracted    bool  `json:"self_subtracted,omitempty"`
	PartialSubtracted int64 `json:"partial_subtracted,omitempty"`
	// Source is where Downloaders came from: "downloaders" (BEP 21),
	// "incomplete" (the fallback: the tracker gave no downloaders),
	// "feed" (torznab figures), "seen" (our peers only) or "" (none).
	Source string `json:"source"`
	// Seen is what we see of the connected peers while serving.
	Seen *SeenPeers `json:"seen,omitempty"`
	// Tracker is the announce URL whose scrape was used; ScrapedAt when it
	// answered and ScrapeAge how old that is now.
	Tracker   string    `json:"tracker,omitempty"`
	ScrapedAt time.Time `json:"scraped_at,omitzero"`
	ScrapeAge Seconds   `json:"scrape_age_seconds,omitempty"`
	// InFeed is how long the torrent has been in the catalog; -1 for a
	// swarm no feed offered.
	InFeed Seconds  `json:"in_feed_seconds"`
	Feeds  []string `json:"feeds,omitempty"`
	// Serving is set while the daemon serves the swarm; Origin says who
	// had it joined: "owner" (btslave repeat) or "auto".
	Serving bool   `json:"serving"`
	Origin  string `json:"origin,omitempty"`
	// State is the autopilot's decision and its reason: "joining",
	// "serving ...", "leaving: outranked by ...", "cooldown 40m: ...",
	// "no figures", "no free slot ...".
	State string `json:"state"`
	// Error is why trackers gave no figures for the swarm.
	Error string `json:"error,omitempty"`
}

// SeenPeers counts the peers connected to a swarm we serve, by what their
// bitfields and BEP 21 upload_only say.
type SeenPeers struct {
	Seeds        int64 `json:"seeds"`
	PartialSeeds int64 `json:"partial_seeds"`
	Downloaders  int64 `json:"downloaders"`
}

// Autopilot is the autopilot's part of Status.
type Autopilot struct {
	Enabled bool   `json:"enabled"`
	Note    string `json:"note,omitempty"`
	// LastRank and NextRank are when the catalog was and will be ranked.
	LastRank time.Time `json:"last_rank,omitzero"`
	NextRank time.Time `json:"next_rank,omitzero"`
	// Ranked counts the swarms ranked last time, Scored those with
	// figures.
	Ranked int `json:"ranked"`
	Scored int `json:"scored"`
	// Slots, OwnerSwarms and AutoSwarms: see Ranking.
	Slots       int `json:"slots"`
	OwnerSwarms int `json:"owner_swarms"`
	AutoSwarms  int `json:"auto_swarms"`
	// Joins and Leaves count the autopilot's decisions since the start.
	Joins  int64 `json:"joins"`
	Leaves int64 `json:"leaves"`
	// Trackers counts the trackers scraped; Failing those whose last
	// scrape failed.
	Trackers int `json:"trackers"`
	Failing  int `json:"trackers_failing"`
	// Error is why the last ranking failed.
	Error string `json:"error,omitempty"`
}

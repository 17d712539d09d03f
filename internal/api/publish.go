package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// PublishRequest publishes a path (POST /api/v1/published): the daemon
// hashes it, seeds it from the owner's disk and lists it on its feed.
type PublishRequest struct {
	Path        string     `json:"path"`              // absolute, on the daemon's machine
	Version     string     `json:"version,omitempty"` // hybrid (default), v1, v2
	PieceLength int64      `json:"piece_length,omitempty"`
	Name        string     `json:"name,omitempty"`
	Comment     string     `json:"comment,omitempty"`
	Source      string     `json:"source,omitempty"`
	Private     bool       `json:"private,omitempty"`
	Trackers    [][]string `json:"trackers,omitempty"` // default: the embedded tracker's
	WebSeeds    []string   `json:"web_seeds,omitempty"`
}

// Published is one published torrent with its swarm's figures
// (GET /api/v1/published lists them).
type Published struct {
	InfoHash   string    `json:"infohash"`
	InfoHashV2 string    `json:"infohash_v2,omitempty"`
	Name       string    `json:"name"`
	Version    string    `json:"version"`
	Path       string    `json:"path"`
	Size       int64     `json:"size"`
	Files      int       `json:"files"`
	Magnet     string    `json:"magnet"`
	TorrentURL string    `json:"torrent_url,omitempty"` // on the public listener
	Published  time.Time `json:"published"`
	// Seeding is whether the everseed serves it; Stopped says why not.
	Seeding bool   `json:"seeding"`
	Stopped string `json:"stopped,omitempty"`
	// Swarm figures: seeds, downloaders and completed (downloads
	// announced as finished, ever) from the embedded tracker's scrape when
	// it tracks the torrent (Tracked), else seeds and downloaders among the
	// peers connected to the everseed; and the bytes the everseed served
	// of it since the daemon started.
	Tracked     bool  `json:"tracked"`
	Seeds       int   `json:"seeds"`
	Downloaders int   `json:"downloaders"`
	Completed   int64 `json:"completed"`
	Peers       int   `json:"peers"` // connected to the everseed
	BytesServed int64 `json:"bytes_served"`
	Verified    int   `json:"pieces_verified"`
	Pieces      int   `json:"pieces"`
}

// PublishJob is a publish under way (GET /api/v1/publishing): the path
// and the bytes hashed so far of its total.
type PublishJob struct {
	Path    string    `json:"path"`
	Done    int64     `json:"done"`
	Total   int64     `json:"total"`
	Started time.Time `json:"started"`
}

// publishRoutes adds the publish endpoints the options provide. Hashing a
// large path takes longer than the server's write timeout: the publish
// request has none (the caller's context bounds it), and
// GET /api/v1/publishing shows its progress meanwhile.
func (s *Server) publishRoutes(mux *http.ServeMux) {
	o := s.opts
	if o.Publish != nil {
		mux.HandleFunc("POST /api/v1/published", func(w http.ResponseWriter, r *http.Request) {
			// No write deadline for this one; a dropped client cancels it.
			if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
				s.opts.Logger.Warn("api: cannot lift the write deadline of a publish", "err", err)
			}
			var req PublishRequest
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
				writeError(w, http.StatusBadRequest, "bad publish request: "+err.Error())
				return
			}
			p, err := o.Publish(r.Context(), req)
			if err != nil {
				writeErr(w, err)
				return
			}
			writeJSON(w, http.StatusOK, p)
		})
	}
	if o.Published != nil {
		mux.HandleFunc("GET /api/v1/published", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, o.Published(r.Context()))
		})
	}
	if o.Publishing != nil {
		mux.HandleFunc("GET /api/v1/publishing", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, o.Publishing(r.Context()))
		})
	}
	if o.Unpublish != nil {
		mux.HandleFunc("DELETE /api/v1/published/{infohash}", func(w http.ResponseWriter, r *http.Request) {
			if err := o.Unpublish(r.Context(), r.PathValue("infohash")); err != nil {
				writeErr(w, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
	}
}

// Publish asks the daemon to publish a path. Hashing takes time: give ctx
// a generous deadline.
func (c *Client) Publish(ctx context.Context, req PublishRequest) (*Published, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var p Published
	if err := c.do(ctx, http.MethodPost, "/api/v1/published", body, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Published lists the published torrents.
func (c *Client) Published(ctx context.Context) ([]Published, error) {
	var ps []Published
	if err := c.get(ctx, "/api/v1/published", &ps); err != nil {
		return nil, err
	}
	return ps, nil
}

// Publishing lists the publishes under way.
func (c *Client) Publishing(ctx context.Context) ([]PublishJob, error) {
	var js []PublishJob
	if err := c.get(ctx, "/api/v1/publishing", &js); err != nil {
		return nil, err
	}
	return js, nil
}

// Unpublish stops seeding and listing a published torrent.
func (c *Client) Unpublish(ctx context.Context, infoHash string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/published/"+url.PathEscape(infoHash), nil, nil)
}

package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// MountRequest mounts a torrent read-only on a directory of the daemon's
// machine (POST /api/v1/mounts): exactly one of Torrent, Magnet or
// InfoHash, as for RepeatRequest.
type MountRequest struct {
	RepeatRequest
	Dir string `json:"dir"` // absolute, an existing empty directory
}

// Mount is one torrent the daemon has mounted (GET /api/v1/mounts lists
// them).
type Mount struct {
	Dir      string    `json:"dir"`
	InfoHash string    `json:"infohash"`
	Name     string    `json:"name,omitempty"` // "" until the metadata is known
	Mounted  time.Time `json:"mounted"`
	// State is MountServing, MountWaiting (served, but the metadata is not
	// known yet: the directory shows only its status file) or MountFailed.
	State string `json:"state"`
	// Error says why a recorded mount is not served now (its remount
	// failed); the record stays until DELETE.
	Error string `json:"error,omitempty"`
	// Counters of the running mount.
	Reads     int64 `json:"reads"`
	BytesRead int64 `json:"bytes_read"`
	Timeouts  int64 `json:"timeouts"`
	Open      int64 `json:"open_files"`
}

// A Mount's states.
const (
	MountServing = "serving"
	MountWaiting = "waiting for metadata"
	MountFailed  = "failed"
)

// Mounter is what the mount endpoints call. Errors wrapping ErrBadRequest
// are the caller's fault (400).
type Mounter interface {
	Mount(ctx context.Context, req MountRequest) (Mount, error)
	Mounts(ctx context.Context) []Mount
	Unmount(ctx context.Context, dir string) error
}

// mountRoutes adds the mount endpoints when the daemon can mount.
func (s *Server) mountRoutes(mux *http.ServeMux) {
	m := s.opts.Mounts
	if m == nil {
		return
	}
	mux.HandleFunc("POST /api/v1/mounts", func(w http.ResponseWriter, r *http.Request) {
		var req MountRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 2*MaxTorrentBytes)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "bad mount request: "+err.Error())
			return
		}
		mt, err := m.Mount(r.Context(), req)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, mt)
	})
	mux.HandleFunc("GET /api/v1/mounts", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, m.Mounts(r.Context()))
	})
	// The directory is a path: it goes in the query, not the URL path.
	mux.HandleFunc("DELETE /api/v1/mounts", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Unmount(r.Context(), r.URL.Query().Get("dir")); err != nil {
			writeErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// Mount asks the daemon to mount a torrent.
func (c *Client) Mount(ctx context.Context, req MountRequest) (*Mount, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var m Mount
	if err := c.do(ctx, http.MethodPost, "/api/v1/mounts", body, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Mounts lists the daemon's mounts.
func (c *Client) Mounts(ctx context.Context) ([]Mount, error) {
	var ms []Mount
	if err := c.get(ctx, "/api/v1/mounts", &ms); err != nil {
		return nil, err
	}
	return ms, nil
}

// Unmount asks the daemon to unmount dir and forget the mount.
func (c *Client) Unmount(ctx context.Context, dir string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/mounts?dir="+url.QueryEscape(dir), nil, nil)
}

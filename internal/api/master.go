package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// HelpRequest asks the daemon to help a master (any client at Addr,
// "IP:PORT") with one torrent: exactly one of Torrent (the .torrent's
// bytes), Magnet or InfoHash (hex) is set.
type HelpRequest struct {
	RepeatRequest
	Addr string `json:"addr"`
}

// MasterState is the master's part of the status: the [master] client's
// state (empty Kind when none is configured) and the torrents helped.
type MasterState struct {
	Kind     string    `json:"kind,omitempty"`
	State    string    `json:"state,omitempty"`
	Error    string    `json:"error,omitempty"`
	Failures int       `json:"failures,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	NextPoll time.Time `json:"next_poll,omitzero"`
	Peer     string    `json:"peer,omitempty"`
	// Downloading is how many torrents the master downloads that pass the
	// filter.
	Downloading int             `json:"downloading"`
	Torrents    []MasterTorrent `json:"torrents"`
}

// MasterTorrent is one torrent helped: bytes forwarded to the master,
// from and to the swarm, the master's progress and connection.
type MasterTorrent struct {
	InfoHash  string    `json:"infohash"`
	Name      string    `json:"name"`
	Source    string    `json:"source"` // "owner" ([master]) or "cli"
	Master    string    `json:"master"`
	Connected bool      `json:"connected"`
	Progress  float64   `json:"progress"` // -1 unknown
	Pieces    int       `json:"pieces"`
	NumPieces int       `json:"num_pieces"`
	ToMaster  int64     `json:"to_master"`
	FromSwarm int64     `json:"from_swarm"`
	ToSwarm   int64     `json:"to_swarm"`
	Wanted    int       `json:"wanted"`
	Pinned    int       `json:"pinned"`
	Started   time.Time `json:"started"`
}

// Help asks the daemon to help a master (POST /api/v1/master/help).
func (c *Client) Help(ctx context.Context, r HelpRequest) (*MasterTorrent, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var t MasterTorrent
	if err := c.do(ctx, http.MethodPost, "/api/v1/master/help", body, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// handleHelp answers POST /api/v1/master/help.
func (s *Server) handleHelp(w http.ResponseWriter, r *http.Request) {
	var req HelpRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 2*MaxTorrentBytes)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad request: "+err.Error())
		return
	}
	t, err := s.opts.Help(r.Context(), req)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

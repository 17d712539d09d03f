package api

import (
	"context"
	"encoding/json"
	"net/http"
)

// CashinRequest asks the daemon's friends, best balance first, to help
// our master with a torrent (POST /api/v1/cashin): InfoHash, plus Torrent
// or Magnet when the friends may not know it; Master is the master's peer
// address (default: [master] peer_address when set).
type CashinRequest struct {
	InfoHash string `json:"info_hash"`
	Magnet   string `json:"magnet,omitempty"`
	Torrent  []byte `json:"torrent,omitempty"`
	Master   string `json:"master,omitempty"`
}

// CashinReply says who was asked, in the order asked (best balance
// first): Helpers accepted, Refused did not (or could not be reached),
// each with its reason. Friend is the first helper's ID, for older
// callers. A cash-in no friend accepted is an error, not a reply.
type CashinReply struct {
	Friend  string         `json:"friend"`
	Helpers []CashinAnswer `json:"helpers"`
	Refused []CashinAnswer `json:"refused"`
}

// CashinAnswer is one friend's answer to a cash-in: Balance is what it
// owed us (negative: what we owed it) when it was asked.
type CashinAnswer struct {
	Friend  string `json:"friend"`
	Short   string `json:"short"`
	Name    string `json:"name,omitempty"`
	Balance int64  `json:"balance"`
	Reason  string `json:"reason"`
}

func (s *Server) handleCashin(w http.ResponseWriter, r *http.Request) {
	var req CashinRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return
	}
	rep, err := s.opts.Cashin(r.Context(), req)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// Cashin asks the daemon to cash in with its friends.
func (c *Client) Cashin(ctx context.Context, req CashinRequest) (*CashinReply, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var rep CashinReply
	if err := c.do(ctx, http.MethodPost, "/api/v1/cashin", body, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

package api

import (
	"context"
	"encoding/json"
	"net/http"
)

// EverseedRequest asks a friend to be a second everseed of a published
// torrent (POST /api/v1/published/{infohash}/everseed).
type EverseedRequest struct {
	Friend string `json:"friend"` // the friend's ID
}

// EverseedReply is the friend's answer, as recorded in the ledger.
type EverseedReply struct {
	Friend   string `json:"friend"`
	InfoHash string `json:"infohash"`
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason,omitempty"`
}

func (s *Server) handleEverseed(w http.ResponseWriter, r *http.Request) {
	var req EverseedRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return
	}
	rep, err := s.opts.AskEverseed(r.Context(), r.PathValue("infohash"), req.Friend)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// AskEverseed asks the daemon to ask friend to be a second everseed of
// the published torrent ih.
func (c *Client) AskEverseed(ctx context.Context, ih, friend string) (*EverseedReply, error) {
	body, err := json.Marshal(EverseedRequest{Friend: friend})
	if err != nil {
		return nil, err
	}
	var rep EverseedReply
	if err := c.do(ctx, http.MethodPost, "/api/v1/published/"+ih+"/everseed", body, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

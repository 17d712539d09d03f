package friends

import (
	"context"
	"crypto/ed25519"
	"net"
)

// Everseed messages: the owner of a published torrent asks a friend to
// be a second everseed (docs/friends-protocol.md §Everseed).
const (
	TypeEverseedRequest Type = 9
	TypeEverseedReply   Type = 10
)

// MaxEverseedMetainfo bounds the .torrent an EverseedRequest carries
// (base64 in JSON, within MaxFrame).
const MaxEverseedMetainfo = 700 << 10

// EverseedRequest asks: download this torrent in full, keep it within
// your disk budget and seed it until I unpublish it.
type EverseedRequest struct {
	ID       uint64 `json:"id"`
	InfoHash string `json:"info_hash"` // v1 (or truncated v2) infohash, hex
	Metainfo []byte `json:"metainfo"`  // the .torrent, base64 in JSON
	Size     int64  `json:"size"`      // bytes of data, as the owner counts them
	// Seed is host:port of the owner's everseed (its peer port), dialled
	// besides the torrent's trackers; "" for none.
	Seed string `json:"seed,omitempty"`
}

// EverseedReply answers an EverseedRequest: accepted (the friend is
// downloading or already keeps it) or why not.
type EverseedReply struct {
	ID     uint64 `json:"id"`
	Accept bool   `json:"accept"`
	Reason string `json:"reason,omitempty"`
}

func (EverseedRequest) Type() Type { return TypeEverseedRequest }
func (EverseedReply) Type() Type   { return TypeEverseedReply }

// EverseedHandler is the optional part of a Handler that answers
// everseed requests; a handler without it refuses them.
type EverseedHandler interface {
	EverseedRequest(ctx context.Context, from ed25519.PublicKey, r EverseedRequest) EverseedReply
}

// answerEverseed is the server's answer to r.
func answerEverseed(ctx context.Context, h Handler, from ed25519.PublicKey, r EverseedRequest) EverseedReply {
	if eh, ok := h.(EverseedHandler); ok {
		return eh.EverseedRequest(ctx, from, r)
	}
	return EverseedReply{ID: r.ID, Reason: "this daemon keeps no everseed for friends"}
}

// validateEverseed checks the everseed messages; handled is false for
// the others.
func validateEverseed(m Message) (handled bool, err error) {
	switch v := m.(type) {
	case EverseedRequest:
		t := v.Type()
		if !validInfoHash(v.InfoHash) {
			return true, bad(t, "info_hash %q is not 40 or 64 lowercase hex digits", v.InfoHash)
		}
		if len(v.Metainfo) == 0 || len(v.Metainfo) > MaxEverseedMetainfo {
			return true, bad(t, "metainfo of %d bytes", len(v.Metainfo))
		}
		if v.Size <= 0 {
			return true, bad(t, "size %d", v.Size)
		}
		if v.Seed != "" {
			if h, p, err := net.SplitHostPort(v.Seed); err != nil || h == "" || p == "" || len(v.Seed) > 255 {
				return true, bad(t, "seed %q is not host:port", v.Seed)
			}
		}
		return true, nil
	case EverseedReply:
		if len(v.Reason) > MaxReasonLen {
			return true, bad(v.Type(), "reason of %d bytes", len(v.Reason))
		}
		return true, nil
	}
	return false, nil
}

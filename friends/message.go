package friends

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
)

// Type is a message's type byte on the direct channel.
type Type byte

// The message types (docs/friends-protocol.md §Messages).
const (
	TypeHello       Type = 1
	TypeHelpRequest Type = 2
	TypeHelpReply   Type = 3
	TypeDelivered   Type = 4
	TypeIOU         Type = 5
	TypeBeacon      Type = 6
	TypeInquire     Type = 7
	TypeTell        Type = 8
)

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeHelpRequest:
		return "help-request"
	case TypeHelpReply:
		return "help-reply"
	case TypeDelivered:
		return "delivered"
	case TypeIOU:
		return "iou"
	case TypeBeacon:
		return "beacon"
	case TypeInquire:
		return "inquire"
	case TypeTell:
		return "tell"
	case TypeEverseedRequest:
		return "everseed-request"
	case TypeEverseedReply:
		return "everseed-reply"
	}
	return fmt.Sprintf("type-%d", byte(t))
}

// Limits on message fields.
const (
	ProtocolVersion = 1
	MaxReasonLen    = 200
	MaxMagnetLen    = 4096
	MaxTellSwarms   = 1000
	MaxInquire      = 1000
	maxIOULen       = 256
)

// ErrMalformed is returned for a message that does not decode or breaks a
// field limit.
var ErrMalformed = errors.New("malformed friends message")

// Message is one decoded message.
type Message interface{ Type() Type }

// Hello opens every direct connection, from both sides. A dialer that is
// not yet our friend carries the invite code it was given.
type Hello struct {
	Version int    `json:"version"`
	Invite  string `json:"invite,omitempty"`
}

// HelpRequest asks: help my master at Master with InfoHash.
type HelpRequest struct {
	ID       uint64 `json:"id"`
	InfoHash string `json:"info_hash"` // 40 or 64 hex digits
	Magnet   string `json:"magnet,omitempty"`
	Metainfo []byte `json:"metainfo,omitempty"` // the .torrent, base64 in JSON
	Master   string `json:"master"`             // host:port of the master's peer port
}

// HelpReply answers a HelpRequest.
type HelpReply struct {
	ID     uint64 `json:"id"`
	Accept bool   `json:"accept"`
	Reason string `json:"reason,omitempty"`
}

// Delivered reports bytes the helper delivered, as a signed IOU proposal.
type Delivered struct {
	InfoHash string `json:"info_hash"`
	IOU      []byte `json:"iou"`
}

// IOUMsg carries a countersigned IOU: the reply to Delivered, or the
// sender's latest when it refused a proposal (Stale) so the other resyncs.
// IOU is empty when the proposal was refused outright, or with Stale when
// the sender holds no IOU for the pair yet.
type IOUMsg struct {
	IOU   []byte `json:"iou"`
	Stale bool   `json:"stale,omitempty"`
	// Allow, on a refusal (IOU empty, Stale false), is the most the
	// sender would countersign now for that swarm: what its master's
	// counters say arrived and no friend was credited for. The creditor
	// may propose that instead. 0 says nothing.
	Allow uint64 `json:"allow,omitempty"`
}

// Beacon says how many swarms the sender has figures for.
type Beacon struct {
	Count int `json:"count"`
}

// Inquire asks for figures on these swarms (all, up to MaxTellSwarms, if
// empty).
type Inquire struct {
	InfoHashes []string `json:"info_hashes,omitempty"`
}

// SwarmStat is one swarm's scraped figures; Age is how many seconds ago
// the sender scraped them.
type SwarmStat struct {
	InfoHash   string `json:"info_hash"`
	Age        int64  `json:"age"`
	Downloaded int64  `json:"downloaded"`
	Seeders    int64  `json:"seeders"`
	Leechers   int64  `json:"leechers"`
}

// Tell answers an Inquire.
type Tell struct {
	Swarms []SwarmStat `json:"swarms"`
}

func (Hello) Type() Type       { return TypeHello }
func (HelpRequest) Type() Type { return TypeHelpRequest }
func (HelpReply) Type() Type   { return TypeHelpReply }
func (Delivered) Type() Type   { return TypeDelivered }
func (IOUMsg) Type() Type      { return TypeIOU }
func (Beacon) Type() Type      { return TypeBeacon }
func (Inquire) Type() Type     { return TypeInquire }
func (Tell) Type() Type        { return TypeTell }

// Encode gives a message's frame payload (JSON).
func Encode(m Message) ([]byte, error) {
	if err := validate(m); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// Decode parses and checks a frame payload of type t.
func Decode(t Type, payload []byte) (Message, error) {
	var m Message
	switch t {
	case TypeHello:
		m = new(Hello)
	case TypeHelpRequest:
		m = new(HelpRequest)
	case TypeHelpReply:
		m = new(HelpReply)
	case TypeDelivered:
		m = new(Delivered)
	case TypeIOU:
		m = new(IOUMsg)
	case TypeBeacon:
		m = new(Beacon)
	case TypeInquire:
		m = new(Inquire)
	case TypeTell:
		m = new(Tell)
	case TypeEverseedRequest:
		m = new(EverseedRequest)
	case TypeEverseedReply:
		m = new(EverseedReply)
	default:
		return nil, fmt.Errorf("unknown type %d: %w", byte(t), ErrMalformed)
	}
	d := json.NewDecoder(bytes.NewReader(payload))
	if err := d.Decode(m); err != nil {
		return nil, fmt.Errorf("%v: %v: %w", t, err, ErrMalformed)
	}
	if d.More() {
		return nil, fmt.Errorf("%v: trailing data: %w", t, ErrMalformed)
	}
	m = deref(m)
	if err := validate(m); err != nil {
		return nil, err
	}
	return m, nil
}

func deref(m Message) Message {
	switch v := m.(type) {
	case *Hello:
		return *v
	case *HelpRequest:
		return *v
	case *HelpReply:
		return *v
	case *Delivered:
		return *v
	case *IOUMsg:
		return *v
	case *Beacon:
		return *v
	case *Inquire:
		return *v
	case *Tell:
		return *v
	case *EverseedRequest:
		return *v
	case *EverseedReply:
		return *v
	}
	return m
}

func bad(t Type, format string, args ...any) error {
	return fmt.Errorf("%v: %s: %w", t, fmt.Sprintf(format, args...), ErrMalformed)
}

func validInfoHash(s string) bool {
	if len(s) != 40 && len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func validate(m Message) error {
	if ok, err := validateEverseed(m); ok {
		return err
	}
	t := m.Type()
	switch v := m.(type) {
	case Hello:
		if v.Version < 1 {
			return bad(t, "version %d", v.Version)
		}
		if len(v.Invite) > 1024 {
			return bad(t, "invite of %d bytes", len(v.Invite))
		}
	case HelpRequest:
		if !validInfoHash(v.InfoHash) {
			return bad(t, "info_hash %q is not 40 or 64 lowercase hex digits", v.InfoHash)
		}
		if len(v.Magnet) > MaxMagnetLen || (v.Magnet != "" && !strings.HasPrefix(v.Magnet, "magnet:?")) {
			return bad(t, "magnet is not a magnet link of at most %d bytes", MaxMagnetLen)
		}
		if h, p, err := net.SplitHostPort(v.Master); err != nil || h == "" || p == "" || len(v.Master) > 255 {
			return bad(t, "master %q is not host:port", v.Master)
		}
	case HelpReply:
		if len(v.Reason) > MaxReasonLen {
			return bad(t, "reason of %d bytes", len(v.Reason))
		}
	case Delivered:
		if !validInfoHash(v.InfoHash) {
			return bad(t, "info_hash %q", v.InfoHash)
		}
		if len(v.IOU) == 0 || len(v.IOU) > maxIOULen {
			return bad(t, "iou of %d bytes", len(v.IOU))
		}
	case IOUMsg:
		// Empty: refused, or (with Stale) no IOU held yet.
		if len(v.IOU) > maxIOULen {
			return bad(t, "iou of %d bytes", len(v.IOU))
		}
	case Beacon:
		if v.Count < 0 {
			return bad(t, "count %d", v.Count)
		}
	case Inquire:
		if len(v.InfoHashes) > MaxInquire {
			return bad(t, "%d info hashes", len(v.InfoHashes))
		}
		for _, h := range v.InfoHashes {
			if !validInfoHash(h) {
				return bad(t, "info_hash %q", h)
			}
		}
	case Tell:
		if len(v.Swarms) > MaxTellSwarms {
			return bad(t, "%d swarms", len(v.Swarms))
		}
		for _, s := range v.Swarms {
			if !validInfoHash(s.InfoHash) || s.Age < 0 || s.Downloaded < 0 || s.Seeders < 0 || s.Leechers < 0 {
				return bad(t, "swarm %q has a bad figure", s.InfoHash)
			}
		}
	}
	return nil
}

// Send encodes m and writes it as one frame.
func Send(w interface{ Write([]byte) (int, error) }, m Message) error {
	b, err := Encode(m)
	if err != nil {
		return err
	}
	return WriteFrame(w, m.Type(), b)
}

package friends

import (
	"crypto/ed25519"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Invite is what `btslave friends invite` prints and `friends add` reads:
// the inviter's key, an address its direct channel answers on, and an
// expiry, signed by that key.
type Invite struct {
	Key     ed25519.PublicKey
	Addr    string
	Expires time.Time
	Sig     []byte
}

// InvitePrefix starts every invite code.
const InvitePrefix = "BTSF1-"

// MaxAddrLen bounds the address in an invite.
const MaxAddrLen = 255

const inviteContext = "btslave friends invite v1\x00"

var (
	// ErrExpired is returned for an invite past its expiry.
	ErrExpired = errors.New("invite has expired")
	// ErrBadSignature is returned when a signature does not verify.
	ErrBadSignature = errors.New("bad signature")
)

var inviteEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewInvite makes a signed invite for addr valid for ttl.
func NewInvite(id Identity, addr string, ttl time.Duration, now time.Time) (Invite, error) {
	if addr == "" || len(addr) > MaxAddrLen {
		return Invite{}, fmt.Errorf("invite: address %q must be 1..%d bytes", addr, MaxAddrLen)
	}
	inv := Invite{Key: id.Public(), Addr: addr, Expires: now.Add(ttl).Truncate(time.Second)}
	inv.Sig = id.Sign(inv.signed())
	return inv, nil
}

// ID returns the inviter's friend ID.
func (inv Invite) ID() ID { return NewID(inv.Key) }

// body: key(32) expires(int64 BE unix seconds) addrlen(1) addr.
func (inv Invite) body() []byte {
	b := make([]byte, 0, 32+8+1+len(inv.Addr)+ed25519.SignatureSize)
	b = append(b, inv.Key...)
	b = binary.BigEndian.AppendUint64(b, uint64(inv.Expires.Unix()))
	b = append(b, byte(len(inv.Addr)))
	return append(b, inv.Addr...)
}

func (inv Invite) signed() []byte { return append([]byte(inviteContext), inv.body()...) }

// String gives the invite code.
func (inv Invite) String() string {
	return InvitePrefix + inviteEnc.EncodeToString(append(inv.body(), inv.Sig...))
}

// ParseInvite decodes an invite code and checks its signature and expiry.
func ParseInvite(code string, now time.Time) (Invite, error) {
	s := strings.ToUpper(strings.Join(strings.Fields(code), ""))
	if !strings.HasPrefix(s, InvitePrefix) {
		return Invite{}, fmt.Errorf("invite: does not start with %s", InvitePrefix)
	}
	raw, err := inviteEnc.DecodeString(s[len(InvitePrefix):])
	if err != nil {
		return Invite{}, fmt.Errorf("invite: %w", err)
	}
	const fixed = 32 + 8 + 1
	if len(raw) < fixed+ed25519.SignatureSize {
		return Invite{}, fmt.Errorf("invite: %d bytes is too short", len(raw))
	}
	n := int(raw[fixed-1])
	if n == 0 || len(raw) != fixed+n+ed25519.SignatureSize {
		return Invite{}, fmt.Errorf("invite: %d bytes does not match address length %d", len(raw), n)
	}
	inv := Invite{
		Key:     ed25519.PublicKey(append([]byte(nil), raw[:32]...)),
		Expires: time.Unix(int64(binary.BigEndian.Uint64(raw[32:40])), 0),
		Addr:    string(raw[fixed : fixed+n]),
		Sig:     append([]byte(nil), raw[fixed+n:]...),
	}
	if !ed25519.Verify(inv.Key, inv.signed(), inv.Sig) {
		return Invite{}, fmt.Errorf("invite from %s: %w", inv.ID().Short(), ErrBadSignature)
	}
	if !now.Before(inv.Expires) {
		return Invite{}, fmt.Errorf("invite from %s (expired %s): %w", inv.ID().Short(), inv.Expires.UTC().Format(time.RFC3339), ErrExpired)
	}
	return inv, nil
}

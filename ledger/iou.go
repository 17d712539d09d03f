package ledger

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
)

// IOU is one countersigned running total between two keys: Debtor says it
// has received Total bytes of help from Creditor, in total, as of Seq.
// Seq and Total only ever grow for a pair; the newest IOU replaces all
// older ones, so a lost message is healed by the next one and a replayed
// one changes nothing.
type IOU struct {
	Seq         uint64
	Debtor      ed25519.PublicKey // pk_a: the one who was helped
	Creditor    ed25519.PublicKey // pk_b: the one who helped
	Total       uint64            // bytes, running total for this direction
	SigDebtor   []byte            // sig_a over Body()
	SigCreditor []byte            // sig_b over Body()
}

// Size is the length of an encoded IOU.
const Size = 1 + 8 + 32 + 32 + 8 + 64 + 64

const (
	version    = 1
	bodySize   = 1 + 8 + 32 + 32 + 8
	sigContext = "btslave-iou-v1\x00"
)

var (
	// ErrMalformed is returned by UnmarshalBinary for anything but a
	// Size-byte version-1 record.
	ErrMalformed = errors.New("malformed IOU")
	// ErrBadSignature is returned when a signature does not verify.
	ErrBadSignature = errors.New("bad IOU signature")
)

// Body is what both parties sign: version, seq, debtor, creditor, total.
func (u IOU) Body() []byte {
	b := make([]byte, 0, bodySize)
	b = append(b, version)
	b = binary.BigEndian.AppendUint64(b, u.Seq)
	b = append(b, pad(u.Debtor)...)
	b = append(b, pad(u.Creditor)...)
	return binary.BigEndian.AppendUint64(b, u.Total)
}

func pad(k []byte) []byte {
	out := make([]byte, 32)
	copy(out, k)
	return out
}

func signed(body []byte) []byte { return append([]byte(sigContext), body...) }

// Sign adds priv's signature in the role priv's public key has in u.
func (u *IOU) Sign(priv ed25519.PrivateKey) error {
	pub := priv.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(priv, signed(u.Body()))
	switch {
	case pub.Equal(u.Debtor):
		u.SigDebtor = sig
	case pub.Equal(u.Creditor):
		u.SigCreditor = sig
	default:
		return fmt.Errorf("sign IOU: key is neither debtor nor creditor")
	}
	return nil
}

// VerifyCreditor checks the creditor's signature.
func (u IOU) VerifyCreditor() error {
	if len(u.Creditor) != ed25519.PublicKeySize || !ed25519.Verify(u.Creditor, signed(u.Body()), u.SigCreditor) {
		return fmt.Errorf("IOU seq %d: creditor's: %w", u.Seq, ErrBadSignature)
	}
	return nil
}

// Verify checks both signatures.
func (u IOU) Verify() error {
	if err := u.VerifyCreditor(); err != nil {
		return err
	}
	if len(u.Debtor) != ed25519.PublicKeySize || !ed25519.Verify(u.Debtor, signed(u.Body()), u.SigDebtor) {
		return fmt.Errorf("IOU seq %d: debtor's: %w", u.Seq, ErrBadSignature)
	}
	return nil
}

// MarshalBinary encodes u in Size bytes; missing signatures are zeros.
func (u IOU) MarshalBinary() ([]byte, error) {
	b := u.Body()
	b = append(b, pad64(u.SigDebtor)...)
	return append(b, pad64(u.SigCreditor)...), nil
}

func pad64(s []byte) []byte {
	out := make([]byte, 64)
	copy(out, s)
	return out
}

// UnmarshalBinary decodes what MarshalBinary wrote. It checks the form,
// not the signatures.
func (u *IOU) UnmarshalBinary(b []byte) error {
	if len(b) != Size || b[0] != version {
		return fmt.Errorf("%d bytes: %w", len(b), ErrMalformed)
	}
	u.Seq = binary.BigEndian.Uint64(b[1:9])
	u.Debtor = bytes.Clone(b[9:41])
	u.Creditor = bytes.Clone(b[41:73])
	u.Total = binary.BigEndian.Uint64(b[73:81])
	u.SigDebtor = bytes.Clone(b[81:145])
	u.SigCreditor = bytes.Clone(b[145:209])
	if u.Debtor.Equal(u.Creditor) {
		return fmt.Errorf("debtor is creditor: %w", ErrMalformed)
	}
	return nil
}

package friends

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// ID identifies a daemon: the SHA-256 of its ed25519 public key.
type ID [32]byte

// EmptyID is the zero ID, held by no key.
var EmptyID ID

// NewID returns the ID of a public key.
func NewID(pub ed25519.PublicKey) ID { return ID(sha256.Sum256(pub)) }

// IDFromBytes returns the ID held in b, which must be 32 bytes long.
func IDFromBytes(b []byte) (ID, error) {
	var id ID
	if len(b) != len(id) {
		return id, fmt.Errorf("friend ID: %d bytes, want %d", len(b), len(id))
	}
	copy(id[:], b)
	return id, nil
}

// IDFromString parses the text form of an ID (see UnmarshalText).
func IDFromString(s string) (ID, error) {
	var id ID
	err := id.UnmarshalText([]byte(s))
	return id, err
}

// String gives the ID as 56 base32 characters with check characters, in
// eight groups of seven joined by dashes.
func (id ID) String() string {
	s := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(id[:])
	return chunkify(luhnify(s))
}

// Short gives the first group, enough to tell friends apart in logs.
func (id ID) Short() string { return id.String()[:7] }

// LogValue logs an ID in its short form.
func (id ID) LogValue() slog.Value { return slog.StringValue(id.Short()) }

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText is lenient: it uppercases, drops dashes and spaces, turns
// the typos 0, 1 and 8 into O, I and B, and checks the check characters.
func (id *ID) UnmarshalText(b []byte) error {
	s := strings.ToUpper(string(b))
	s = strings.NewReplacer("-", "", " ", "", "0", "O", "1", "I", "8", "B").Replace(s)
	if len(s) != 56 {
		return fmt.Errorf("friend ID %q: %d characters, want 56", b, len(s))
	}
	plain, err := unluhnify(s)
	if err != nil {
		return fmt.Errorf("friend ID %q: %w", b, err)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(plain)
	if err != nil {
		return fmt.Errorf("friend ID %q: %w", b, err)
	}
	copy(id[:], raw)
	return nil
}

const luhnAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

var errCheck = errors.New("check character mismatch (typo?)")

// luhn32 returns the Luhn mod 32 check character of s.
func luhn32(s string) (byte, error) {
	factor, sum := 1, 0
	for i := 0; i < len(s); i++ {
		cp := strings.IndexByte(luhnAlphabet, s[i])
		if cp < 0 {
			return 0, fmt.Errorf("%q is not a base32 character", s[i])
		}
		addend := factor * cp
		factor = 3 - factor
		sum += addend/32 + addend%32
	}
	return luhnAlphabet[(32-sum%32)%32], nil
}

// luhnify appends a check character to each 13-character group of 52.
func luhnify(s string) string {
	var b strings.Builder
	for i := 0; i < 4; i++ {
		p := s[i*13 : (i+1)*13]
		c, _ := luhn32(p) // s is our own base32
		b.WriteString(p)
		b.WriteByte(c)
	}
	return b.String()
}

func unluhnify(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < 4; i++ {
		p := s[i*14 : i*14+13]
		c, err := luhn32(p)
		if err != nil {
			return "", err
		}
		if c != s[i*14+13] {
			return "", errCheck
		}
		b.WriteString(p)
	}
	return b.String(), nil
}

func chunkify(s string) string {
	parts := make([]string, 0, 8)
	for i := 0; i < len(s); i += 7 {
		parts = append(parts, s[i:i+7])
	}
	return strings.Join(parts, "-")
}

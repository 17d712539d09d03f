package friends

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ErrNotPinned is returned by the TLS handshake when the other side's key
// is not the one we expected (dialing) or not one we accept (listening).
var ErrNotPinned = errors.New("peer key is not pinned")

// Certificate returns a self-signed TLS certificate for the identity key.
// Its only meaning is the key inside: peers pin the key, not a CA.
func (i Identity) Certificate() (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "btslave " + i.ID().Short()},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(20 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, i.Public(), i.Private)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: i.Private}, nil
}

// PeerKey returns the ed25519 key of a self-signed certificate chain's
// leaf, checking that the leaf is signed by that key.
func PeerKey(rawCerts [][]byte) (ed25519.PublicKey, error) {
	if len(rawCerts) != 1 {
		return nil, fmt.Errorf("peer sent %d certificates, want 1", len(rawCerts))
	}
	c, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return nil, fmt.Errorf("peer certificate: %w", err)
	}
	k, ok := c.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("peer certificate has a %T key, want ed25519", c.PublicKey)
	}
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		return nil, fmt.Errorf("peer certificate is not self-signed by its key: %w", err)
	}
	return k, nil
}

// ServerConfig is the TLS 1.3 config of the friends listener: it demands a
// client certificate and lets accept decide on the key (a friend, or a
// stranger presenting an invite it was given).
func (i Identity) ServerConfig(accept func(ed25519.PublicKey) bool) (*tls.Config, error) {
	cert, err := i.Certificate()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:            tls.VersionTLS13,
		Certificates:          []tls.Certificate{cert},
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: pin(func(k ed25519.PublicKey) bool { return accept(k) }),
		NextProtos:            []string{ALPN},
	}, nil
}

// ClientConfig is the TLS 1.3 config for dialing the friend with key want.
func (i Identity) ClientConfig(want ed25519.PublicKey) (*tls.Config, error) {
	cert, err := i.Certificate()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// There is no CA: the pinned key is checked in VerifyPeerCertificate.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: pin(func(k ed25519.PublicKey) bool { return bytes.Equal(k, want) }),
		NextProtos:            []string{ALPN},
		ServerName:            "btslave-friend",
	}, nil
}

// ALPN names the friends protocol in the TLS handshake.
const ALPN = "btslave-friends/1"

func pin(ok func(ed25519.PublicKey) bool) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		k, err := PeerKey(raw)
		if err != nil {
			return err
		}
		if !ok(k) {
			return fmt.Errorf("%s: %w", NewID(k).Short(), ErrNotPinned)
		}
		return nil
	}
}

// ConnKey returns the verified peer key of a completed handshake.
func ConnKey(cs tls.ConnectionState) (ed25519.PublicKey, error) {
	if len(cs.PeerCertificates) != 1 {
		return nil, errors.New("no peer certificate")
	}
	k, ok := cs.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("peer key is not ed25519")
	}
	return k, nil
}

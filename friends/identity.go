package friends

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyFile is the identity key's name inside the data dir.
const KeyFile = "friends.key"

const pemType = "BTSLAVE ED25519 SEED"

// Identity is this daemon's key pair.
type Identity struct {
	Private ed25519.PrivateKey
}

// Public returns the public key.
func (i Identity) Public() ed25519.PublicKey { return i.Private.Public().(ed25519.PublicKey) }

// ID returns the friend ID.
func (i Identity) ID() ID { return NewID(i.Public()) }

// Sign signs msg.
func (i Identity) Sign(msg []byte) []byte { return ed25519.Sign(i.Private, msg) }

// LoadIdentity reads the key from dir, or makes one on first run and
// writes it with mode 0600. A key file readable by others is refused.
func LoadIdentity(dir string) (Identity, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createIdentity(path)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("read identity: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return Identity{}, fmt.Errorf("read identity: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return Identity{}, fmt.Errorf("identity %s has mode %v; want 0600 (chmod 600 it)", path, st.Mode().Perm())
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != pemType || len(blk.Bytes) != ed25519.SeedSize {
		return Identity{}, fmt.Errorf("identity %s: not a %s PEM block", path, pemType)
	}
	return Identity{Private: ed25519.NewKeyFromSeed(blk.Bytes)}, nil
}

func createIdentity(path string) (Identity, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Identity{}, fmt.Errorf("make identity: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Identity{}, fmt.Errorf("make identity: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: priv.Seed()})
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return Identity{}, fmt.Errorf("make identity: %w", err)
	}
	if _, err := f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// Link, not rename: two first runs racing keep the first key.
		err = os.Link(tmp, path)
	}
	os.Remove(tmp)
	if errors.Is(err, fs.ErrExist) {
		return LoadIdentity(filepath.Dir(path))
	}
	if err != nil {
		return Identity{}, fmt.Errorf("make identity: %w", err)
	}
	return Identity{Private: priv}, nil
}

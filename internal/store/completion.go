package store

import (
	"encoding/binary"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	bolt "go.etcd.io/bbolt"
)

var bucketCompletion = []byte("completion")

// PieceCompletion records which pieces are verified, in the daemon's
// database, for anacrolix storage. Writes go through bolt's Batch, so many
// pieces completing at once share one fsync.
type PieceCompletion struct{ db *DB }

var _ storage.PieceCompletion = PieceCompletion{}

// NewPieceCompletion returns the database's piece completion store.
func (db *DB) NewPieceCompletion() PieceCompletion { return PieceCompletion{db} }

func pieceKey(pk metainfo.PieceKey) []byte {
	k := make([]byte, 24)
	copy(k, pk.InfoHash[:])
	binary.BigEndian.PutUint32(k[20:], uint32(pk.Index))
	return k
}

// Get implements storage.PieceCompletion.
func (pc PieceCompletion) Get(pk metainfo.PieceKey) (c storage.Completion, err error) {
	err = pc.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCompletion).Get(pieceKey(pk))
		if len(v) == 1 {
			c.Ok, c.Complete = true, v[0] == 1
		}
		return nil
	})
	return c, err
}

// Set implements storage.PieceCompletion.
func (pc PieceCompletion) Set(pk metainfo.PieceKey, complete bool) error {
	v := []byte{0}
	if complete {
		v[0] = 1
	}
	return pc.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCompletion).Put(pieceKey(pk), v)
	})
}

// Forget drops every record of one torrent's pieces.
func (pc PieceCompletion) Forget(ih metainfo.Hash) error {
	return pc.db.Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCompletion).Cursor()
		for k, _ := c.Seek(ih[:]); k != nil && string(k[:20]) == string(ih[:]); k, _ = c.Next() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}

// Persistent tells anacrolix that completion survives restarts.
func (PieceCompletion) Persistent() bool { return true }

// Close implements storage.PieceCompletion; the database is closed by its owner.
func (PieceCompletion) Close() error { return nil }

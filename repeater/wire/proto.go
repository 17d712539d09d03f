package wire

import (
	"encoding/binary"
	"errors"
	"math/bits"
)

// Message IDs of the peer wire protocol (BEP 3, BEP 6, BEP 10).
const (
	msgChoke         = 0
	msgUnchoke       = 1
	msgInterested    = 2
	msgNotInterested = 3
	msgHave          = 4
	msgBitfield      = 5
	msgRequest       = 6
	msgPiece         = 7
	msgCancel        = 8
	msgSuggest       = 13
	msgHaveAll       = 14
	msgHaveNone      = 15
	msgReject        = 16
	msgAllowedFast   = 17
	msgExtended      = 20
)

const (
	handshakeLen = 68 // pstrlen, "BitTorrent protocol", reserved, info hash, peer id
	pstr         = "\x13BitTorrent protocol"
	// MaxMessageLen is the largest message length accepted: a 1 MiB block or
	// bitfield plus the PIECE header. Anything longer closes the connection.
	MaxMessageLen = 1<<20 + 9
)

// Errors that close one connection.
var (
	ErrFrameTooLong    = errors.New("wire: message longer than 1 MiB + header")
	ErrBadMessage      = errors.New("wire: malformed message")
	ErrBadExtHandshake = errors.New("wire: malformed extended handshake")
)

// reserved-byte flags of the handshake.
func fastBit(reserved []byte) bool     { return reserved[7]&0x04 != 0 }
func extendedBit(reserved []byte) bool { return reserved[5]&0x10 != 0 }

func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// msgHaveBytes builds HAVE(piece).
func msgHaveBytes(piece uint32) []byte {
	b := make([]byte, 9)
	binary.BigEndian.PutUint32(b, 5)
	b[4] = msgHave
	binary.BigEndian.PutUint32(b[5:], piece)
	return b
}

// msgRejectBytes builds REJECT for a request (index, begin, length).
func msgRejectBytes(req []byte) []byte { return msgReqBytes(msgReject, req) }

// msgReqBytes builds a message of id (REQUEST, CANCEL, REJECT) for a
// request (index, begin, length).
func msgReqBytes(id byte, req []byte) []byte {
	b := make([]byte, 17)
	binary.BigEndian.PutUint32(b, 13)
	b[4] = id
	copy(b[5:], req[:12])
	return b
}

// msgExtBytes builds an extended message with the peer's id for it.
func msgExtBytes(id byte, payload []byte) []byte {
	b := make([]byte, 6+len(payload))
	binary.BigEndian.PutUint32(b, uint32(2+len(payload)))
	b[4] = msgExtended
	b[5] = id
	copy(b[6:], payload)
	return b
}

func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, v)
	return b
}

// Bitset is a set of piece indices.
type Bitset struct{ w []uint64 }

// Set adds i.
func (b *Bitset) Set(i int) {
	if i < 0 {
		return
	}
	for len(b.w) <= i/64 {
		b.w = append(b.w, 0)
	}
	b.w[i/64] |= 1 << (i % 64)
}

// Clear removes i.
func (b *Bitset) Clear(i int) {
	if i >= 0 && i/64 < len(b.w) {
		b.w[i/64] &^= 1 << (i % 64)
	}
}

// Has reports whether i is in the set.
func (b *Bitset) Has(i int) bool {
	return i >= 0 && i/64 < len(b.w) && b.w[i/64]&(1<<(i%64)) != 0
}

// Count is the number of members.
func (b *Bitset) Count() int {
	n := 0
	for _, w := range b.w {
		n += bits.OnesCount64(w)
	}
	return n
}

// SetRange adds [0, n).
func (b *Bitset) SetRange(n int) {
	for i := 0; i < n; i++ {
		b.Set(i)
	}
}

// Reset empties the set.
func (b *Bitset) Reset() { b.w = b.w[:0] }

// Clone copies the set.
func (b *Bitset) Clone() Bitset { return Bitset{w: append([]uint64(nil), b.w...)} }

// setFromBitfield loads a BITFIELD payload (high bit first).
func (b *Bitset) setFromBitfield(p []byte) {
	b.Reset()
	for i, by := range p {
		for j := 0; j < 8; j++ {
			if by&(0x80>>j) != 0 {
				b.Set(i*8 + j)
			}
		}
	}
}

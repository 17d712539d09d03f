package wire

import (
	"encoding/binary"

	"github.com/anacrolix/torrent/metainfo"
)

// PieceLengths is implemented by a Pieces that knows how long each piece
// is. The layer then serves the padding of hybrid (BEP 52 v1+v2)
// torrents.
//
// In a hybrid, a v1 peer's piece at a file's end reaches into the pad
// file that follows, so the block there is requested whole (libtorrent
// 2.0 requests 16 KiB at offset 0 of a 1234-byte file's piece). anacrolix
// v1.61 lays the torrent out as v2, where that piece ends with the file:
// it finds the request "overflows piece" and closes the connection. The
// layer cuts such a request to what the library holds, remembers the
// cut, and pads the library's PIECE with zeros up to the length asked
// for; a block wholly in padding it answers itself.
type PieceLengths interface {
	// PieceLength is the piece's length as the library serves it, and as
	// a v1 peer sees it, padding included (the same but in a hybrid
	// torrent); 0, 0 when unknown.
	PieceLength(ih metainfo.Hash, piece int) (lib, v1 int64)
}

// maxPadCuts bounds the cut requests a connection remembers: one per
// file end is in flight at a time in practice.
const maxPadCuts = 256

// maxPadBlock is the longest request the layer pads or answers with
// zeros (peers ask 16 KiB); longer ones are the library's to refuse.
const maxPadBlock = 1 << 17

// padCut is a request the layer shortened: the library answers with lib
// bytes, the peer gets pad more zeros.
type padCut struct{ lib, pad uint32 }

// fitRequest checks a REQUEST (index, begin, length) the library will see
// against the library's piece length. A request reaching into a hybrid's
// padding is cut in place to the library's piece end; it reports false
// when the whole block is padding and the layer answered it.
func (c *Conn) fitRequest(req []byte) bool {
	pl, ok := c.layer.pieces.(PieceLengths)
	if !ok {
		return true
	}
	c.mu.Lock()
	ih, known := c.st.infoHash, c.st.ihKnown
	c.mu.Unlock()
	if !known {
		return true
	}
	index, begin, length := be32(req), be32(req[4:]), be32(req[8:])
	lib, v1 := pl.PieceLength(ih, int(index))
	end := int64(begin) + int64(length)
	if end <= lib || end > v1 || length > maxPadBlock {
		return true // fits, or not ours to fix: the library decides
	}
	if int64(begin) >= lib {
		msg := make([]byte, 13+length)
		binary.BigEndian.PutUint32(msg, 9+length)
		msg[4] = msgPiece
		copy(msg[5:13], req[:8])
		c.inject(msg)
		return false
	}
	cut := uint32(lib - int64(begin))
	var key [8]byte
	copy(key[:], req[:8])
	c.mu.Lock()
	if c.pads == nil {
		c.pads = map[[8]byte]padCut{}
	}
	if len(c.pads) >= maxPadCuts {
		clear(c.pads)
	}
	c.pads[key] = padCut{lib: cut, pad: length - cut}
	c.mu.Unlock()
	binary.BigEndian.PutUint32(req[8:], cut)
	return true
}

// padPiece is called with the header of one of our PIECE messages (13
// bytes: length, id, index, begin). For the answer to a cut request it
// returns the header with the peer's length and how many zeros follow
// the block.
func (c *Conn) padPiece(hdr []byte) ([]byte, int) {
	c.mu.Lock()
	if len(c.pads) == 0 {
		c.mu.Unlock()
		return hdr, 0
	}
	key := [8]byte(hdr[5:13])
	cut, ok := c.pads[key]
	if ok && be32(hdr)-9 == cut.lib {
		delete(c.pads, key)
	} else {
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return hdr, 0
	}
	out := append([]byte(nil), hdr...)
	binary.BigEndian.PutUint32(out, be32(hdr)+cut.pad)
	return out, int(cut.pad)
}

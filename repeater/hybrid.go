package repeater

import (
	"sync"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
)

// pieceLength is a piece's length as anacrolix serves it and as a v1 peer
// sees it: they differ at a file's end in a hybrid (v1+v2) torrent, where
// the v1 piece runs on into the padding (see wire.PieceLengths). It is
// the piece's own length, both ways, for other torrents, whose peers
// agree with the library; 0, 0 while the info is unknown. The wire
// layer asks at every request, so what a torrent is, once its info is
// known, is cached by infohash (an infohash fixes its info) and the
// client is asked only the first time.
func pieceLength(ih metainfo.Hash, get func() *torrent.Torrent, piece int) (lib, v1 int64) {
	h := hybrids.of(ih, get)
	if h == nil || h.info == nil || piece < 0 || piece >= h.info.NumPieces() {
		return 0, 0
	}
	if !h.hybrid {
		l := h.info.Piece(piece).Length()
		return l, l
	}
	lib, ok := h.tails[piece]
	if !ok {
		lib = h.info.PieceLength
	}
	return lib, h.info.Piece(piece).V1Length()
}

// hybridInfo is a torrent's info and, for a hybrid (hybrid set), the
// length of each piece that ends a file short of the piece length.
type hybridInfo struct {
	info   *metainfo.Info
	tails  map[int]int64
	hybrid bool
}

type hybridCache struct {
	mu sync.Mutex
	m  map[metainfo.Hash]*hybridInfo
}

var hybrids hybridCache

// maxHybridCache bounds the cache; it is rebuilt on demand.
const maxHybridCache = 4096

// of returns the torrent's entry, nil while its info is unknown.
func (c *hybridCache) of(ih metainfo.Hash, get func() *torrent.Torrent) *hybridInfo {
	c.mu.Lock()
	h, ok := c.m[ih]
	c.mu.Unlock()
	if ok {
		return h
	}
	t := get()
	if t == nil || t.Info() == nil {
		return nil
	}
	h = newHybridInfo(t.Info())
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxHybridCache {
		c.m = map[metainfo.Hash]*hybridInfo{}
	}
	c.m[ih] = h
	c.mu.Unlock()
	return h
}

func newHybridInfo(info *metainfo.Info) *hybridInfo {
	if !info.HasV2() || !info.HasV1() {
		return &hybridInfo{info: info}
	}
	tails := map[int]int64{}
	pl := info.PieceLength
	for fi := range info.UpvertedFilesIter() {
		if fi.Length == 0 {
			continue
		}
		last := int((fi.TorrentOffset + fi.Length - 1) / pl)
		if rest := (fi.TorrentOffset + fi.Length) - int64(last)*pl; rest < pl {
			tails[last] = rest
		}
	}
	return &hybridInfo{info: info, tails: tails, hybrid: true}
}

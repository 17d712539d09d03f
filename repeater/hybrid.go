package repeater

import (
	"sync"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
)

// pieceLength is a piece's length as anacrolix serves it and as a v1 peer
// sees it: they differ at a file's end in a hybrid (v1+v2) torrent, where
// the v1 piece runs on into the padding (see wire.PieceLengths). It is
// 0, 0 for other torrents, whose peers agree with the library.
func pieceLength(t *torrent.Torrent, piece int) (lib, v1 int64) {
	if t == nil {
		return 0, 0
	}
	info := t.Info()
	if info == nil || !info.HasV2() || !info.HasV1() || piece < 0 || piece >= t.NumPieces() {
		return 0, 0
	}
	lib, ok := hybridTails.of(info)[piece]
	if !ok {
		lib = info.PieceLength
	}
	return lib, info.Piece(piece).V1Length()
}

// tailCache keeps, per hybrid info, the length of each piece that ends a
// file short of the piece length: metainfo.Piece.Length walks the file
// tree at each call, and the wire layer asks at each request.
type tailCache struct {
	mu sync.Mutex
	m  map[*metainfo.Info]map[int]int64
}

var hybridTails tailCache

// maxTailCache bounds the cache; it is rebuilt on demand.
const maxTailCache = 256

func (c *tailCache) of(info *metainfo.Info) map[int]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tails, ok := c.m[info]; ok {
		return tails
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
	if c.m == nil || len(c.m) >= maxTailCache {
		c.m = map[*metainfo.Info]map[int]int64{}
	}
	c.m[info] = tails
	return tails
}

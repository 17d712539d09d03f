// Package torrentfile is the one gate every torrent passes before btslave
// or the BitTorrent library decodes it: .torrent files from the CLI, the
// local API and feeds, and info dictionaries received from peers for a
// magnet link. It bounds bencode nesting without recursion (Scan), then
// decodes and checks what a client would otherwise trip over later (Parse,
// ParseInfo, CheckInfo). Errors wrap ErrBadTorrent and say what is wrong.
package torrentfile

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/anacrolix/torrent/metainfo"
)

const (
	// MaxDepth bounds list and dictionary nesting in a .torrent or an info
	// dictionary. Real ones nest a v2 file tree one level per directory;
	// 64 leaves room for deep directory trees.
	MaxDepth = 64
	// MaxPieceLength is the largest piece length accepted.
	MaxPieceLength = 64 << 20
	// MaxTotalLength bounds a torrent's total size (1 PiB) so that sums of
	// hostile file lengths cannot overflow.
	MaxTotalLength = 1 << 50
	// MaxInfoBytes bounds an info dictionary received from peers (what
	// anacrolix accepts as a metadata size).
	MaxInfoBytes = 16 << 20
	// MaxPieces is the most pieces any torrent btslave accepts can have: a
	// v1 info dictionary holds 20 bytes a piece within MaxInfoBytes. The
	// wire layer bounds a peer's HAVE and BITFIELD by it before the
	// metadata is known.
	MaxPieces = MaxInfoBytes / 20
)

// ErrBadTorrent wraps every reason a torrent is refused.
var ErrBadTorrent = errors.New("bad .torrent")

// Torrent is a checked .torrent.
type Torrent struct {
	MetaInfo *metainfo.MetaInfo
	Info     metainfo.Info
	// Size is the content's total length in bytes.
	Size int64
	// V1 and V2 are the info hashes (V2 the full SHA-256), each set when
	// the torrent has that version.
	V1, V2 []byte
}

// Parse checks and decodes a .torrent file.
func Parse(data []byte) (*Torrent, error) {
	if _, err := Scan(data, MaxDepth); errors.Is(err, ErrTooDeep) {
		return nil, fmt.Errorf("%w: %w", ErrBadTorrent, err)
	} else if err != nil {
		return nil, fmt.Errorf("%w: not bencoded metainfo: %w", ErrBadTorrent, err)
	}
	mi, err := metainfo.Load(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: not bencoded metainfo: %v", ErrBadTorrent, err)
	}
	if len(mi.InfoBytes) == 0 {
		return nil, fmt.Errorf("%w: no info dictionary", ErrBadTorrent)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return nil, fmt.Errorf("%w: info dictionary does not decode: %v", ErrBadTorrent, err)
	}
	layers := mi.PieceLayers
	if layers == nil {
		layers = map[string]string{} // v2 files longer than a piece need theirs
	}
	size, err := CheckInfo(&info, layers)
	if err != nil {
		return nil, err
	}
	t := &Torrent{MetaInfo: mi, Info: info, Size: size}
	t.V1, t.V2 = hashes(&info, mi.InfoBytes)
	return t, nil
}

// ParseInfo checks and decodes an info dictionary received from peers for
// a torrent known by info hash ih (v1, or a v2 hash truncated to 20
// bytes): the bytes must hash to ih before anything decodes them.
func ParseInfo(b []byte, ih [20]byte) (metainfo.Info, error) {
	if len(b) == 0 || len(b) > MaxInfoBytes {
		return metainfo.Info{}, fmt.Errorf("%w: info dictionary of %d bytes", ErrBadTorrent, len(b))
	}
	v1, v2 := sha1.Sum(b), sha256.Sum256(b)
	if !bytes.Equal(v1[:], ih[:]) && !bytes.Equal(v2[:20], ih[:]) {
		return metainfo.Info{}, fmt.Errorf("%w: info dictionary does not hash to %x", ErrBadTorrent, ih)
	}
	n, err := Scan(b, MaxDepth)
	if err != nil {
		return metainfo.Info{}, fmt.Errorf("%w: %w", ErrBadTorrent, err)
	}
	if n != len(b) {
		return metainfo.Info{}, fmt.Errorf("%w: %d bytes after the info dictionary", ErrBadTorrent, len(b)-n)
	}
	var info metainfo.Info
	if err := unmarshalInfo(b, &info); err != nil {
		return metainfo.Info{}, fmt.Errorf("%w: info dictionary does not decode: %v", ErrBadTorrent, err)
	}
	if _, err := CheckInfo(&info, nil); err != nil {
		return metainfo.Info{}, err
	}
	return info, nil
}

func unmarshalInfo(b []byte, info *metainfo.Info) error {
	mi := metainfo.MetaInfo{InfoBytes: b}
	i, err := mi.UnmarshalInfo()
	*info = i
	return err
}

func hashes(info *metainfo.Info, infoBytes []byte) (v1, v2 []byte) {
	if info.HasV1() {
		h := sha1.Sum(infoBytes)
		v1 = h[:]
	}
	if info.HasV2() {
		h := sha256.Sum256(infoBytes)
		v2 = h[:]
	}
	return v1, v2
}

// CheckInfo checks an info dictionary and returns the content size: the
// piece length is positive and at most 64 MiB, v1 piece hashes are a
// multiple of 20 bytes and as many as the total length needs, and v2 file
// roots and piece layers (nil when the caller has none) are consistent.
func CheckInfo(info *metainfo.Info, layers map[string]string) (int64, error) {
	size, err := checkInfo(info, layers)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBadTorrent, err)
	}
	return size, nil
}

func checkInfo(info *metainfo.Info, layers map[string]string) (int64, error) {
	pl := info.PieceLength
	switch {
	case pl <= 0:
		return 0, fmt.Errorf("piece length %d is not positive", pl)
	case pl > MaxPieceLength:
		return 0, fmt.Errorf("piece length %d MiB is over the 64 MiB limit", pl>>20)
	case !info.HasV1() && !info.HasV2():
		return 0, fmt.Errorf("meta version %d is neither 1 nor 2", info.MetaVersion)
	}
	var size int64
	if info.HasV1() {
		if len(info.Pieces)%20 != 0 {
			return 0, fmt.Errorf("pieces field is %d bytes, not a multiple of 20", len(info.Pieces))
		}
		if len(info.Files) > 0 && info.Length != 0 {
			return 0, fmt.Errorf("both length and files are set")
		}
		for fi := range info.UpvertedV1Files() {
			if fi.Length < 0 || fi.Length > MaxTotalLength || size+fi.Length > MaxTotalLength {
				return 0, fmt.Errorf("file length %d is out of range", fi.Length)
			}
			size += fi.Length
		}
		if size <= 0 {
			return 0, fmt.Errorf("no data (total length %d)", size)
		}
		if want := (size + pl - 1) / pl; int64(len(info.Pieces)/20) != want {
			return 0, fmt.Errorf("%d piece hashes for %d bytes in %d-byte pieces (want %d)", len(info.Pieces)/20, size, pl, want)
		}
	}
	if info.HasV2() {
		if pl < 16<<10 || pl&(pl-1) != 0 {
			return 0, fmt.Errorf("v2 piece length %d is not a power of two of at least 16 KiB", pl)
		}
		var v2size int64
		var bad error
		info.FileTree.Walk(nil, func(path []string, ft *metainfo.FileTree) {
			if bad != nil || ft.IsDir() {
				return
			}
			n := ft.File.Length
			switch {
			case n < 0 || n > MaxTotalLength || v2size+n > MaxTotalLength:
				bad = fmt.Errorf("file %q: length %d is out of range", strings.Join(path, "/"), n)
			case n > 0 && len(ft.File.PiecesRoot) != 32:
				bad = fmt.Errorf("file %q: pieces root is %d bytes, want 32", strings.Join(path, "/"), len(ft.File.PiecesRoot))
			}
			v2size += n
		})
		if bad != nil {
			return 0, bad
		}
		if v2size <= 0 {
			return 0, fmt.Errorf("v2 file tree holds no data")
		}
		if layers != nil {
			if err := validateLayers(layers, info); err != nil {
				return 0, err
			}
		}
		if !info.HasV1() {
			size = v2size
		}
	}
	if n := info.NumPieces(); n > MaxPieces {
		return 0, fmt.Errorf("%d pieces, more than %d", n, MaxPieces)
	}
	return size, nil
}

// validateLayers checks the v2 piece layers against the file roots;
// anacrolix's check panics on inputs it does not expect.
func validateLayers(layers map[string]string, info *metainfo.Info) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("piece layers: %v", r)
		}
	}()
	for k, v := range layers {
		if len(k) != 32 || len(v)%32 != 0 {
			return fmt.Errorf("piece layers: malformed entry (key %d bytes, value %d bytes)", len(k), len(v))
		}
	}
	if err := metainfo.ValidatePieceLayers(layers, &info.FileTree, info.PieceLength); err != nil {
		return fmt.Errorf("piece layers: %w", err)
	}
	return nil
}

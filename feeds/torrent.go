package feeds

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/anacrolix/torrent/metainfo"
)

const (
	// maxPieceLength is the largest piece length accepted (as the repeater
	// does).
	maxPieceLength = 64 << 20
	// maxTotalLength bounds a torrent's total size (1 PiB) so that sums of
	// hostile file lengths cannot overflow.
	maxTotalLength = 1 << 50
	// maxBencodeDepth bounds list and dictionary nesting in a .torrent; the
	// bencode decoder recurses without a limit.
	maxBencodeDepth = 64
)

// ParseTorrent validates a .torrent and describes it as a catalog entry
// (info hashes, name, size, trackers, a magnet link and the bytes
// themselves). It accepts v1, v2 and hybrid torrents and checks what a
// client needs to join without surprises: the info dictionary decodes, the
// piece length is positive and at most 64 MiB, v1 piece hashes are a
// multiple of 20 bytes and as many as the total length needs, and v2 file
// roots and piece layers are consistent. Errors wrap ErrBadTorrent and say
// what is wrong.
func ParseTorrent(data []byte) (Entry, error) {
	if err := checkBencodeDepth(data, maxBencodeDepth); err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrBadTorrent, err)
	}
	mi, err := metainfo.Load(bytes.NewReader(data))
	if err != nil {
		return Entry{}, fmt.Errorf("%w: not bencoded metainfo: %v", ErrBadTorrent, err)
	}
	if len(mi.InfoBytes) == 0 {
		return Entry{}, fmt.Errorf("%w: no info dictionary", ErrBadTorrent)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return Entry{}, fmt.Errorf("%w: info dictionary does not decode: %v", ErrBadTorrent, err)
	}
	size, err := checkInfo(&info, mi.PieceLayers)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrBadTorrent, err)
	}
	e := Entry{
		Name:     info.BestName(),
		Size:     size,
		Trackers: cleanTiers(mi.UpvertedAnnounceList()),
		Torrent:  data,
	}
	if info.HasV1() {
		h := sha1.Sum(mi.InfoBytes)
		e.InfoHashV1 = hex.EncodeToString(h[:])
	}
	if info.HasV2() {
		h := sha256.Sum256(mi.InfoBytes)
		e.InfoHashV2 = hex.EncodeToString(h[:])
	}
	e.Magnet = entryMagnet(&e)
	return e, nil
}

// checkInfo checks an info dictionary and returns the content size.
func checkInfo(info *metainfo.Info, layers map[string]string) (int64, error) {
	pl := info.PieceLength
	switch {
	case pl <= 0:
		return 0, fmt.Errorf("piece length %d is not positive", pl)
	case pl > maxPieceLength:
		return 0, fmt.Errorf("piece length %s is over the 64 MiB limit", fmtSize(pl))
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
			if fi.Length < 0 || fi.Length > maxTotalLength || size+fi.Length > maxTotalLength {
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
			case n < 0 || n > maxTotalLength || v2size+n > maxTotalLength:
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
		if err := validateLayers(layers, info); err != nil {
			return 0, err
		}
		if !info.HasV1() {
			size = v2size
		}
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

// ParseMagnet parses a magnet link (v1 btih, v2 btmh or both) into a
// catalog entry. A magnet that names no info hash is an error wrapping
// ErrBadMagnet.
func ParseMagnet(uri string) (Entry, error) {
	uri = strings.TrimSpace(uri)
	m, err := metainfo.ParseMagnetV2Uri(uri)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrBadMagnet, err)
	}
	if !m.InfoHash.Ok && !m.V2InfoHash.Ok {
		return Entry{}, fmt.Errorf("%w: it has no info hash (xt=urn:btih:... or urn:btmh:...)", ErrBadMagnet)
	}
	e := Entry{Name: strings.TrimSpace(m.DisplayName), Magnet: uri}
	if m.InfoHash.Ok {
		e.InfoHashV1 = m.InfoHash.Value.HexString()
	}
	if m.V2InfoHash.Ok {
		e.InfoHashV2 = m.V2InfoHash.Value.HexString()
	}
	for _, tr := range m.Trackers {
		e.Trackers = append(e.Trackers, []string{tr})
	}
	e.Trackers = cleanTiers(e.Trackers)
	if xl := m.Params.Get("xl"); xl != "" {
		if n, err := strconv.ParseInt(xl, 10, 64); err == nil && n > 0 {
			e.Size = n
		}
	}
	return e, nil
}

// entryMagnet makes a magnet link from what an entry knows.
func entryMagnet(e *Entry) string {
	var m metainfo.MagnetV2
	if e.InfoHashV1 != "" {
		m.InfoHash.Set(metainfo.NewHashFromHex(e.InfoHashV1))
	}
	if e.InfoHashV2 != "" {
		if err := m.V2InfoHash.Value.FromHexString(e.InfoHashV2); err == nil {
			m.V2InfoHash.Ok = true
		}
	}
	m.DisplayName = e.Name
	for _, tier := range e.Trackers {
		m.Trackers = append(m.Trackers, tier...)
	}
	return m.String()
}

// cleanTiers drops empty and repeated tracker URLs and empty tiers.
func cleanTiers(tiers [][]string) [][]string {
	seen := map[string]bool{}
	var out [][]string
	for _, tier := range tiers {
		var t []string
		for _, u := range tier {
			u = strings.TrimSpace(u)
			if u == "" || seen[u] {
				continue
			}
			seen[u] = true
			t = append(t, u)
		}
		if len(t) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// checkBencodeDepth scans bencoded data without decoding it and fails when
// lists and dictionaries nest deeper than limit.
func checkBencodeDepth(data []byte, limit int) error {
	depth := 0
	for i := 0; i < len(data); {
		switch c := data[i]; {
		case c == 'l' || c == 'd':
			depth++
			if depth > limit {
				return fmt.Errorf("bencode nests deeper than %d levels", limit)
			}
			i++
		case c == 'e':
			depth--
			i++
			if depth <= 0 {
				return nil // end of the top-level value; Load checks the rest
			}
		case c == 'i':
			j := bytes.IndexByte(data[i:], 'e')
			if j < 0 {
				return nil // truncated; the decoder says so
			}
			i += j + 1
		case c >= '0' && c <= '9':
			j := bytes.IndexByte(data[i:], ':')
			if j < 0 {
				return nil
			}
			n, err := strconv.Atoi(string(data[i : i+j]))
			if err != nil || n < 0 || n > len(data) {
				return nil
			}
			i += j + 1 + n
		default:
			return nil // not bencode; the decoder says so
		}
		if depth == 0 {
			return nil
		}
	}
	return nil
}

package publish

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// Options describe the torrent to make. The zero value makes a hybrid
// with a piece length chosen from the size and no trackers.
type Options struct {
	Version     Version
	PieceLength int64  // 0: PieceLength(total)
	Name        string // default: the path's base name
	Comment     string
	Source      string     // "source" in the info dict (changes the infohash)
	Private     bool       // BEP 27
	Trackers    [][]string // announce-list tiers; the first URL is "announce"
	WebSeeds    []string   // BEP 19 url-list
	CreatedBy   string     // default "btslave"
	// CreationDate is written as "creation date"; zero writes none (the
	// output then depends only on the data and the options).
	CreationDate time.Time
	// Workers hash pieces in parallel; 0 is 2×GOMAXPROCS+2 (reads overlap
	// hashing), fewer for pieces so large that their buffers pass 128 MiB.
	Workers int
	// Progress, if set, is called from the workers with the bytes hashed so
	// far of total; it must be quick and safe for concurrent use.
	Progress func(done, total int64)
}

// Torrent is a made torrent.
type Torrent struct {
	Bytes       []byte // the .torrent
	InfoBytes   []byte // its bencoded info dictionary
	Version     Version
	Name        string
	PieceLength int64
	NumPieces   int
	Size        int64    // bytes of data, padding not counted
	Files       []File   // sorted as in the torrent
	Single      bool     // a single-file torrent
	Root        string   // the path given to Create, absolute
	Skipped     []string // symlinks and special files left out
	InfoHashV1  string   // hex; "" for a v2-only torrent
	InfoHashV2  string   // hex SHA-256; "" for a v1 torrent
	Magnet      string
}

// Create hashes path, a file or a directory, into a torrent.
func Create(ctx context.Context, path string, o Options) (*Torrent, error) {
	files, single, skipped, err := scan(path)
	if err != nil {
		return nil, err
	}
	var size int64
	for _, f := range files {
		size += f.Length
	}
	if size == 0 {
		return nil, fmt.Errorf("publish: %s: %w", path, ErrEmpty)
	}
	pl := o.PieceLength
	if pl == 0 {
		pl = PieceLength(size)
	} else if !validPieceLength(pl) {
		return nil, fmt.Errorf("publish: piece length %d: want a power of two from %d to %d", pl, MinPieceLength, MaxPieceLength)
	}
	total := layout(files, pl, o.Version, single)
	h := newHasher(files, pl, total, o.Version)
	h.progress, h.size = o.Progress, size
	if err := h.run(ctx, o.Workers); err != nil {
		return nil, err
	}
	if err := unchanged(files); err != nil {
		return nil, err
	}
	name := o.Name
	if name == "" {
		name = filepath.Base(filepath.Clean(path))
	}
	if single {
		files[0].Path = []string{name}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	t := &Torrent{Version: o.Version, Name: name, PieceLength: pl, NumPieces: h.numPieces, Size: size,
		Files: files, Single: single, Root: abs, Skipped: skipped}
	info := infoDict(t, h, o)
	if t.InfoBytes, err = bencode.Marshal(info); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if o.Version != V2 {
		s := sha1.Sum(t.InfoBytes)
		t.InfoHashV1 = hex.EncodeToString(s[:])
	}
	if o.Version != V1 {
		s := sha256.Sum256(t.InfoBytes)
		t.InfoHashV2 = hex.EncodeToString(s[:])
	}
	top := map[string]any{"info": bencode.Bytes(t.InfoBytes)}
	createdBy := o.CreatedBy
	if createdBy == "" {
		createdBy = "btslave"
	}
	top["created by"] = createdBy
	if o.Comment != "" {
		top["comment"] = o.Comment
	}
	if !o.CreationDate.IsZero() {
		top["creation date"] = o.CreationDate.Unix()
	}
	var tiers [][]string
	for _, tier := range o.Trackers {
		if len(tier) > 0 {
			tiers = append(tiers, tier)
		}
	}
	if len(tiers) > 0 {
		top["announce"] = tiers[0][0]
		if len(tiers) > 1 || len(tiers[0]) > 1 {
			top["announce-list"] = tiers
		}
	}
	if len(o.WebSeeds) > 0 {
		top["url-list"] = o.WebSeeds
	}
	if o.Version != V1 {
		layers := map[string]string{}
		for i, l := range h.out.layers {
			if l != nil {
				var b bytes.Buffer
				for _, x := range l {
					b.Write(x[:])
				}
				layers[string(h.out.roots[i][:])] = b.String()
			}
		}
		top["piece layers"] = layers
	}
	if t.Bytes, err = bencode.Marshal(top); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	t.Magnet = magnet(t, tiers)
	return t, nil
}

// infoDict builds the info dictionary as a map: bencode sorts its keys.
func infoDict(t *Torrent, h *hasher, o Options) map[string]any {
	info := map[string]any{"name": t.Name, "piece length": t.PieceLength}
	if o.Private {
		info["private"] = 1
	}
	if o.Source != "" {
		info["source"] = o.Source
	}
	if o.Version != V2 {
		info["pieces"] = string(h.out.v1)
		if t.Single {
			info["length"] = t.Files[0].Length
		} else {
			var list []map[string]any
			for _, f := range t.Files {
				list = append(list, map[string]any{"length": f.Length, "path": f.Path})
				if o.Version == Hybrid && f.Length%t.PieceLength != 0 {
					pad := alignUp(f.Length, t.PieceLength) - f.Length
					list = append(list, map[string]any{"attr": "p", "length": pad, "path": []string{".pad", strconv.FormatInt(pad, 10)}})
				}
			}
			info["files"] = list
		}
	}
	if o.Version != V1 {
		info["meta version"] = 2
		tree := map[string]any{}
		for i, f := range t.Files {
			leaf := map[string]any{"length": f.Length}
			if f.Length > 0 {
				leaf["pieces root"] = string(h.out.roots[i][:])
			}
			node := tree
			for _, c := range f.Path[:len(f.Path)-1] {
				sub, ok := node[c].(map[string]any)
				if !ok {
					sub = map[string]any{}
					node[c] = sub
				}
				node = sub
			}
			node[f.Path[len(f.Path)-1]] = map[string]any{"": leaf}
		}
		info["file tree"] = tree
	}
	return info
}

// magnet is the BEP 9 link, with the v2 "btmh" for v2 and hybrid (BEP 52).
func magnet(t *Torrent, tiers [][]string) string {
	var m metainfo.MagnetV2
	if t.InfoHashV1 != "" {
		var h metainfo.Hash
		_ = h.FromHexString(t.InfoHashV1)
		m.InfoHash.Set(h)
	}
	if t.InfoHashV2 != "" {
		b, _ := hex.DecodeString(t.InfoHashV2)
		var v2 [32]byte
		copy(v2[:], b)
		m.V2InfoHash.Set(v2)
	}
	m.DisplayName = t.Name
	for _, tier := range tiers {
		m.Trackers = append(m.Trackers, tier...)
	}
	return m.String()
}

// unchanged checks that no file changed size or time while it was hashed.
func unchanged(files []File) error {
	for _, f := range files {
		st, err := os.Stat(f.Abs)
		if err != nil {
			return fmt.Errorf("publish: %s: %w: %w", f.Abs, ErrChanged, err)
		}
		if st.Size() != f.Length || !st.ModTime().Equal(f.ModTime) {
			return fmt.Errorf("publish: %s: %w (size %d, modified %s; was %d, %s)", f.Abs, ErrChanged,
				st.Size(), st.ModTime().Format(time.RFC3339Nano), f.Length, f.ModTime.Format(time.RFC3339Nano))
		}
	}
	return nil
}

// WriteFile writes data to path atomically: a temporary file in the same
// directory, synced, then renamed over path. On any failure path is left
// as it was.
func WriteFile(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

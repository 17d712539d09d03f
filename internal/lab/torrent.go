package lab

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// TorrentOptions describes the data and .torrent MakeTorrent creates.
type TorrentOptions struct {
	// Name of the file (or, with Files, of the directory). Default
	// "data.bin".
	Name string
	// Size of the single file in bytes. Default 4 MiB.
	Size int64
	// Files, when set, makes a multi-file torrent with one file per size
	// (f000.bin, f001.bin, …) under the directory Name; Size is ignored.
	Files []int64
	// PieceLength in bytes, a power of two. Default 256 KiB.
	PieceLength int64
	// Announce URLs, each in its own tier; the first is also "announce".
	Announce []string
	// Text makes compressible, text-like content instead of random bytes.
	Text bool
	// Dir receives the data; default a new t.TempDir(). The .torrent goes
	// to another t.TempDir() as <Name>.torrent.
	Dir string
}

// MakeTorrent writes data and a v1 .torrent for it. It returns the path of
// the .torrent, the path of the data (the file, or the directory of a
// multi-file torrent: its parent is the save path to give a seeder), the
// info-hash in lower-case hex and the metainfo.
func MakeTorrent(t testing.TB, opts TorrentOptions) (torrentPath, dataPath, infoHash string, mi *metainfo.MetaInfo) {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "data.bin"
	}
	if opts.Size == 0 {
		opts.Size = 4 << 20
	}
	if opts.PieceLength == 0 {
		opts.PieceLength = 256 << 10
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	dataPath = filepath.Join(opts.Dir, opts.Name)
	if len(opts.Files) == 0 {
		if err := writeData(dataPath, opts.Size, opts.Text); err != nil {
			t.Fatalf("lab: make torrent: %v", err)
		}
	} else {
		if err := os.MkdirAll(dataPath, 0o755); err != nil {
			t.Fatalf("lab: make torrent: %v", err)
		}
		for i, size := range opts.Files {
			p := filepath.Join(dataPath, fmt.Sprintf("f%03d.bin", i))
			if err := writeData(p, size, opts.Text); err != nil {
				t.Fatalf("lab: make torrent: %v", err)
			}
		}
	}

	info := metainfo.Info{PieceLength: opts.PieceLength}
	if err := info.BuildFromFilePath(dataPath); err != nil {
		t.Fatalf("lab: make torrent %s: %v", dataPath, err)
	}
	infoBytes, err := bencode.Marshal(info)
	if err != nil {
		t.Fatalf("lab: make torrent: %v", err)
	}
	mi = &metainfo.MetaInfo{InfoBytes: infoBytes, CreatedBy: "btslave lab"}
	if len(opts.Announce) > 0 {
		mi.Announce = opts.Announce[0]
		if len(opts.Announce) > 1 {
			for _, u := range opts.Announce {
				mi.AnnounceList = append(mi.AnnounceList, []string{u})
			}
		}
	}
	torrentPath = filepath.Join(t.TempDir(), opts.Name+".torrent")
	f, err := os.Create(torrentPath)
	if err != nil {
		t.Fatalf("lab: make torrent: %v", err)
	}
	if err := mi.Write(f); err != nil {
		f.Close()
		t.Fatalf("lab: write %s: %v", torrentPath, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("lab: write %s: %v", torrentPath, err)
	}
	return torrentPath, dataPath, mi.HashInfoBytes().HexString(), mi
}

// words make text-like data: about 3:1 with zstd or gzip.
var words = []string{
	"the", "swarm", "peer", "piece", "block", "seed", "leech", "tracker", "announce", "choke",
	"unchoke", "interested", "have", "bitfield", "request", "cancel", "port", "extended",
	"handshake", "metadata", "repeater", "friend", "ledger", "upload", "download", "ratio",
	"of", "and", "to", "a", "in", "is", "it", "that", "for", "on", "with", "as", "was", "at",
}

// writeData writes size bytes of random or text-like data to path.
func writeData(path string, size int64, text bool) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.NewChaCha8(randomSeed())
	if text {
		r := rand.New(rng)
		var line []byte
		for n := int64(0); n < size; {
			line = line[:0]
			for len(line) < 60+r.IntN(20) {
				line = append(line, words[r.IntN(len(words))]...)
				line = append(line, ' ')
			}
			line = strconv.AppendInt(line, int64(r.IntN(10000)), 10)
			line = append(line, '\n')
			k := min(int64(len(line)), size-n)
			if _, err := w.Write(line[:k]); err != nil {
				f.Close()
				return err
			}
			n += k
		}
	} else if _, err := io.CopyN(w, rng, size); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func randomSeed() [32]byte {
	var seed [32]byte
	for i := range 4 {
		binary.LittleEndian.PutUint64(seed[i*8:], rand.Uint64())
	}
	return seed
}

// VerifyFile reports an error on t, and returns false, unless the files at
// got and want have the same SHA-256.
func VerifyFile(t testing.TB, got, want string) bool {
	t.Helper()
	gotSum, gotSize, err := fileSHA256(got)
	if err != nil {
		t.Errorf("lab: verify: %v", err)
		return false
	}
	wantSum, wantSize, err := fileSHA256(want)
	if err != nil {
		t.Errorf("lab: verify: %v", err)
		return false
	}
	if gotSum != wantSum {
		t.Errorf("lab: %s (%d bytes, sha256 %s) differs from %s (%d bytes, sha256 %s)",
			got, gotSize, gotSum, want, wantSize, wantSum)
		return false
	}
	return true
}

func fileSHA256(path string) (sum string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	size, err = io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

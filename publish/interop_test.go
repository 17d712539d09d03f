package publish_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/publish"
)

// libtorrentScript makes a torrent of argv[1] with libtorrent's
// create_torrent (piece length argv[2], mode argv[3]) and prints its
// infohashes, and those libtorrent reads from the .torrent argv[4].
const libtorrentScript = `
import json, os, sys
import libtorrent as lt
path, pl, mode, ours = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
fs = lt.file_storage()
lt.add_files(fs, path)
flags = {"hybrid": 0, "v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only}[mode]
ct = lt.create_torrent(fs, pl, flags=flags)
lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(path)))
ref = lt.torrent_info(ct.generate())
ti = lt.torrent_info(ours)
def hs(t):
    h = t.info_hashes()
    return {"v1": str(h.v1) if h.has_v1() else "", "v2": str(h.v2) if h.has_v2() else ""}
print(json.dumps({"ref": hs(ref), "ours": hs(ti), "files": ti.num_files(), "pieces": ti.num_pieces()}))
`

// Ensure that libtorrent makes the same torrents of the same directory
// (same infohashes in every version) and reads ours with the hashes we
// computed.
func TestInterop_LibtorrentSameInfohash(t *testing.T) {
	lab.Require(t, lab.PythonLibtorrent)
	dir := writeTree(t, 7, map[string]int{
		"a.bin": 40000, "b.txt": 100, "empty": 0, "sub/c.bin": 70000, "sub/deep/z": 300000,
	})
	single := filepath.Join(writeTree(t, 8, map[string]int{"one.iso": 100000}), "one.iso")
	for _, path := range []string{dir, single} {
		for _, v := range versions {
			for _, pl := range []int64{16 << 10, 64 << 10} {
				t.Run(filepath.Base(path)+"/"+v.String()+"/"+strconv.FormatInt(pl>>10, 10)+"k", func(t *testing.T) {
					tr, err := publish.Create(context.Background(), path, publish.Options{Version: v, PieceLength: pl})
					if err != nil {
						t.Fatal(err)
					}
					file := filepath.Join(t.TempDir(), "x.torrent")
					if err := publish.WriteFile(file, tr.Bytes); err != nil {
						t.Fatal(err)
					}
					out, err := exec.Command("/usr/bin/python3", "-c", libtorrentScript, path, strconv.FormatInt(pl, 10), v.String(), file).CombinedOutput()
					if err != nil {
						t.Fatalf("libtorrent: %v\n%s", err, out)
					}
					var got struct {
						Ref, Ours struct{ V1, V2 string }
					}
					if err := json.Unmarshal(out, &got); err != nil {
						t.Fatalf("%v: %s", err, out)
					}
					if got.Ours.V1 != tr.InfoHashV1 || got.Ours.V2 != tr.InfoHashV2 {
						t.Errorf("libtorrent reads our torrent as v1 %q v2 %q; we computed %q %q", got.Ours.V1, got.Ours.V2, tr.InfoHashV1, tr.InfoHashV2)
					}
					if got.Ref != got.Ours {
						t.Errorf("libtorrent's own torrent of %s: v1 %q v2 %q; ours %q %q", path, got.Ref.V1, got.Ref.V2, got.Ours.V1, got.Ours.V2)
					}
				})
			}
		}
	}
}

// Ensure that Transmission reads our v1 torrents with our infohash, and
// our hybrids from Transmission 4 on. Transmission 3.00 (Debian 12) reads
// no BEP 52 "file tree" at all, libtorrent's hybrids included: for its
// users publish --version v1.
func TestInterop_TransmissionReads(t *testing.T) {
	lab.Require(t, "transmission-show")
	dir := writeTree(t, 9, map[string]int{"a": 40000, "b/c": 70000, "d": 0})
	ver, _ := exec.Command("transmission-show", "--version").CombinedOutput()
	old := strings.HasPrefix(strings.TrimPrefix(string(ver), "transmission-show "), "3.") ||
		strings.HasPrefix(strings.TrimPrefix(string(ver), "transmission-show "), "2.")
	for _, v := range []publish.Version{publish.V1, publish.Hybrid} {
		tr, err := publish.Create(context.Background(), dir, publish.Options{Version: v})
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "x.torrent")
		if err := os.WriteFile(file, tr.Bytes, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("transmission-show", file).CombinedOutput()
		if v == publish.Hybrid && old {
			t.Logf("%s reads no v2 file tree (err %v); hybrid not checked", strings.TrimSpace(string(ver)), err)
			continue
		}
		if err != nil {
			t.Fatalf("%v: transmission-show: %v\n%s", v, err, out)
		}
		if !strings.Contains(strings.ToLower(string(out)), tr.InfoHashV1) {
			t.Errorf("%v: transmission-show does not print the v1 infohash %s:\n%s", v, tr.InfoHashV1, out)
		}
	}
}

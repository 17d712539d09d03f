package feeds_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/feeds"
)

func TestParseTorrent(t *testing.T) {
	t.Run("v1", func(t *testing.T) {
		tt := makeTorrent(t, "debian.iso", 100_000, false, "http://tracker.example/announce")
		e, err := feeds.ParseTorrent(tt.data)
		if err != nil {
			t.Fatal(err)
		}
		if e.InfoHashV1 != tt.v1 || e.InfoHashV2 != "" || e.Name != "debian.iso" || e.Size != 100_000 ||
			!bytes.Equal(e.Torrent, tt.data) || len(e.Trackers) != 1 || e.Trackers[0][0] != "http://tracker.example/announce" {
			t.Errorf("entry %+v", e)
		}
		if !strings.Contains(e.Magnet, "xt=urn:btih:"+tt.v1) {
			t.Errorf("magnet %q lacks the v1 hash", e.Magnet)
		}
	})
	t.Run("hybrid", func(t *testing.T) {
		tt := makeTorrent(t, "hybrid.bin", 20_000, true)
		e, err := feeds.ParseTorrent(tt.data)
		if err != nil {
			t.Fatal(err)
		}
		if e.InfoHashV1 != tt.v1 || e.InfoHashV2 != tt.v2 || e.Size != 20_000 || e.Key() != tt.v1 {
			t.Errorf("entry %+v, want v1 %s v2 %s", e, tt.v1, tt.v2)
		}
		if !strings.Contains(e.Magnet, "urn:btmh:1220"+tt.v2) {
			t.Errorf("magnet %q lacks the v2 hash", e.Magnet)
		}
	})
	t.Run("v2 only", func(t *testing.T) {
		tt := makeTorrent(t, "v2.bin", 20_000, true)
		mi, _ := metainfo.Load(bytes.NewReader(tt.data))
		info, _ := mi.UnmarshalInfo()
		info.Length, info.Pieces = 0, nil
		v2 := encodeTorrent(t, info)
		e, err := feeds.ParseTorrent(v2.data)
		if err != nil {
			t.Fatal(err)
		}
		if e.InfoHashV1 != "" || e.InfoHashV2 != v2.v2 || e.Key() != v2.v2 || e.Size != 20_000 {
			t.Errorf("entry %+v", e)
		}
	})
}

// Ensure that a bad .torrent is refused with the reason.
func TestParseTorrent_Bad(t *testing.T) {
	good := makeTorrent(t, "x", 100_000, false)
	mi, _ := metainfo.Load(bytes.NewReader(good.data))
	info, _ := mi.UnmarshalInfo()
	with := func(f func(i *metainfo.Info)) []byte {
		i := info
		i.Pieces = slices.Clone(info.Pieces)
		f(&i)
		return encodeTorrent(t, i).data
	}
	hyb := makeTorrent(t, "h", 1000, true)
	hmi, _ := metainfo.Load(bytes.NewReader(hyb.data))
	hinfo, _ := hmi.UnmarshalInfo()
	withV2 := func(f func(i *metainfo.Info)) []byte {
		i := hinfo
		i.FileTree = metainfo.FileTree{Dir: map[string]metainfo.FileTree{"h": hinfo.FileTree.Dir["h"]}}
		f(&i)
		return encodeTorrent(t, i).data
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"garbage", []byte("hello, world"), "not bencoded metainfo"},
		{"html", []byte("<html><body>Please log in</body></html>"), "not bencoded metainfo"},
		{"no info", []byte("d8:announce3:urle"), "no info dictionary"},
		{"zero piece length", with(func(i *metainfo.Info) { i.PieceLength = 0 }), "piece length 0 is not positive"},
		{"huge piece length", with(func(i *metainfo.Info) { i.PieceLength = 128 << 20 }), "over the 64 MiB limit"},
		{"pieces not multiple of 20", with(func(i *metainfo.Info) { i.Pieces = i.Pieces[:len(i.Pieces)-1] }), "not a multiple of 20"},
		{"pieces inconsistent", with(func(i *metainfo.Info) { i.Pieces = append(i.Pieces, make([]byte, 20)...) }), "5 piece hashes for 100000 bytes in 32768-byte pieces (want 4)"},
		{"no data", with(func(i *metainfo.Info) {
			i.Length, i.Pieces = 0, nil
			i.Files = []metainfo.FileInfo{{Length: 0, Path: []string{"a"}}}
		}), "no data"},
		{"negative length", with(func(i *metainfo.Info) { i.Length = -5 }), "out of range"},
		{"deep nesting", []byte("d4:info" + strings.Repeat("l", 100_000) + strings.Repeat("e", 100_000) + "e"), "nests deeper than 64"},
		{"v2 short pieces root", withV2(func(i *metainfo.Info) {
			f := i.FileTree.Dir["h"]
			f.File.PiecesRoot = "short"
			i.FileTree.Dir["h"] = f
		}), "pieces root is 5 bytes, want 32"},
		{"v2 piece length", withV2(func(i *metainfo.Info) { i.PieceLength = 20000; i.Pieces = i.Pieces[:20] }), "not a power of two"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := feeds.ParseTorrent(tc.data)
			if !errors.Is(err, feeds.ErrBadTorrent) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrBadTorrent with %q", err, tc.want)
			}
		})
	}
}

func TestParseMagnet(t *testing.T) {
	const v1 = "6ae899361087e9175e5fbce838781a2ecc21b805"
	const v2 = "e7d14d45575dea429b5c578d7c7176dc4db8202943da9bd4890069f4a6631e31"
	for _, tc := range []struct {
		name, uri    string
		v1, v2, dn   string
		size         int64
		trackers     int
		wantErr      string
		wantBadMagic bool
	}{
		{name: "v1", uri: "magnet:?xt=urn:btih:" + strings.ToUpper(v1) + "&dn=Fedora&tr=udp://a:1&tr=http://b/announce&xl=12345", v1: v1, dn: "Fedora", size: 12345, trackers: 2},
		{name: "v2", uri: "magnet:?xt=urn:btmh:1220" + v2, v2: v2},
		{name: "hybrid", uri: "magnet:?xt=urn:btih:" + v1 + "&xt=urn:btmh:1220" + v2, v1: v1, v2: v2},
		{name: "no hash", uri: "magnet:?dn=nothing", wantErr: "no info hash"},
		{name: "bad hash", uri: "magnet:?xt=urn:btih:zzzz", wantErr: "bad magnet link"},
		{name: "not magnet", uri: "http://example.org/", wantErr: "unexpected scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := feeds.ParseMagnet(tc.uri)
			if tc.wantErr != "" {
				if !errors.Is(err, feeds.ErrBadMagnet) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want ErrBadMagnet with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.InfoHashV1 != tc.v1 || e.InfoHashV2 != tc.v2 || e.Name != tc.dn || e.Size != tc.size || len(e.Trackers) != tc.trackers || e.Magnet != tc.uri {
				t.Errorf("entry %+v", e)
			}
		})
	}
}

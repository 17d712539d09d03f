package torrentfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
)

func TestCheckInfo(t *testing.T) {
	ok := metainfo.Info{Name: "a", PieceLength: 16, Length: 40, Pieces: make([]byte, 3*20)}
	if _, err := CheckInfo(&ok, nil); err != nil {
		t.Fatalf("valid info refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*metainfo.Info)
		want string
	}{
		{"zero piece length", func(i *metainfo.Info) { i.PieceLength = 0 }, "piece length 0 is not positive"},
		{"huge piece length", func(i *metainfo.Info) { i.PieceLength = 1 << 30 }, "over the 64 MiB limit"},
		{"ragged pieces", func(i *metainfo.Info) { i.Pieces = i.Pieces[:59] }, "multiple of 20"},
		{"too few hashes", func(i *metainfo.Info) { i.Pieces = i.Pieces[:40] }, "want 3"},
		{"empty", func(i *metainfo.Info) { i.Length = 0 }, "no data"},
		{"negative file", func(i *metainfo.Info) {
			i.Length = 0
			i.Files = []metainfo.FileInfo{{Length: 50, Path: []string{"x"}}, {Length: -10, Path: []string{"y"}}}
		}, "length -10 is out of range"},
	} {
		info := ok
		info.Pieces = append([]byte(nil), ok.Pieces...)
		tc.mod(&info)
		_, err := CheckInfo(&info, nil)
		if !errors.Is(err, ErrBadTorrent) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrBadTorrent containing %q", tc.name, err, tc.want)
		}
	}
}

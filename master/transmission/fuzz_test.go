package transmission_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/btslave/btslave/master/transmission"
)

// FuzzDecode feeds arbitrary replies to both decoders and the torrent-get
// decoder: errors are fine, panics are not, and a decoded torrent is sane.
func FuzzDecode(f *testing.F) {
	for _, p := range []string{"testdata/session_get_4.1.json", "testdata/torrent_get_4.1.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"result":"success","arguments":{"torrents":[{"hashString":"0123456789abcdef0123456789abcdef01234567","name":"x","status":4,"percentDone":0.1,"leftUntilDone":5,"pieces":"gA==","pieceCount":1}]}}`))
	f.Add([]byte(`{"result":"no such method"}`))
	f.Add([]byte(`{"result":"success","arguments":{"torrents":[{"hashString":"0123456789abcdef0123456789abcdef01234567","downloadedEver":1048576}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, dec := range []func([]byte) (map[string]json.RawMessage, error){transmission.DecodeClassic, transmission.DecodeJSONRPC} {
			args, err := dec(data)
			if err != nil {
				continue
			}
			transmission.Speaks(args)
			if n, err := transmission.DecodeReceived(args, "0123456789abcdef0123456789abcdef01234567"); err == nil && n < 0 {
				t.Fatalf("received %d", n)
			}
			ts, err := transmission.DecodeTorrents(args)
			if err != nil {
				continue
			}
			for _, tt := range ts {
				if len(tt.InfoHash) != 40 {
					t.Fatalf("info hash %q", tt.InfoHash)
				}
				if tt.Pieces != nil && tt.NumPieces > 0 && len(tt.Pieces) != (tt.NumPieces+7)/8 {
					t.Fatalf("%d bitfield bytes for %d pieces", len(tt.Pieces), tt.NumPieces)
				}
				tt.HasPiece(tt.NumPieces - 1)
			}
		}
	})
}

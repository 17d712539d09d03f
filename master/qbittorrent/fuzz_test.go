package qbittorrent_test

import (
	"testing"

	"github.com/btslave/btslave/master/qbittorrent"
)

// FuzzDecode feeds arbitrary replies to every decoder: errors are fine,
// panics are not, and what decodes is sane.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`[{"hash":"0123456789abcdef0123456789abcdef01234567","name":"a","progress":0.25,"state":"stoppedDL","amount_left":100}]`))
	f.Add([]byte(`[2,2,1,0,0,0,0,0,2]`))
	f.Add([]byte(`{"peers":{"127.0.0.9:7000":{"client":"btslave/0.9","ip":"127.0.0.9","port":7000}}}`))
	f.Add([]byte(`[{"hash":"0123456789abcdef0123456789abcdef01234567","downloaded":4096,"num_complete":1,"num_incomplete":9}]`))
	f.Add([]byte(`{"listen_port":6881,"current_interface_address":"127.0.0.2"}`))
	f.Add([]byte(`2.11.2`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if ts, err := qbittorrent.DecodeTorrents(data); err == nil {
			for _, tt := range ts {
				if len(tt.InfoHash) != 40 || tt.Magnet == "" {
					t.Fatalf("torrent %+v", tt)
				}
			}
		}
		if have, busy, n, err := qbittorrent.DecodePieceStates(data); err == nil {
			if len(have) != (n+7)/8 || len(busy) != len(have) {
				t.Fatalf("%d and %d bytes for %d pieces", len(have), len(busy), n)
			}
			for i := range have {
				if have[i]&busy[i] != 0 {
					t.Fatalf("byte %d: pieces both held and being downloaded", i)
				}
			}
		}
		if n, err := qbittorrent.DecodeReceived(data, "0123456789abcdef0123456789abcdef01234567"); err == nil && n < 0 {
			t.Fatalf("received %d", n)
		}
		if addrs, err := qbittorrent.DecodeBtslavePeers(data); err == nil {
			for _, a := range addrs {
				if !a.IsValid() || a.Is4In6() {
					t.Fatalf("helper address %v", a)
				}
			}
		}
		qbittorrent.DecodePreferences(data)
		if v, err := qbittorrent.ParseVersion(string(data)); err == nil {
			_ = v.String()
		}
	})
}

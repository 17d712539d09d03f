package btfs_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/btslave/btslave/btfs"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/repeater"
)

// traceMount prints, once a second while BTFS_TRACE is set, what a
// sequential read through m is doing: bytes delivered to the reader, the
// cache's pieces and evictions, the torrent's chunk counts and the peer
// lines of anacrolix's status (requests outstanding, choke and interest).
func traceMount(m *btfs.Mount, r *repeater.Repeater, sw *repeater.Swarm) (stop func()) {
	if os.Getenv("BTFS_TRACE") == "" {
		return func() {}
	}
	var werrs atomic.Int64
	var lastErr atomic.Value
	sw.Torrent().SetOnWriteChunkError(func(err error) { werrs.Add(1); lastErr.Store(err.Error()) })
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		var last int64
		start := time.Now()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
			}
			ms, cs := m.Stats(), r.Cache().Stats()
			ts := sw.Torrent().Stats()
			ss := sw.Stats()
			fmt.Printf("trace %3.0fs: read %6.2f MiB/s (pos %4d MiB) cache held %3d MiB pieces %d partial %d evictions %d misses %d | chunks useful %d wasted %d | swarm evicted %d fetched %d cancelled %d claimed %d\n",
				time.Since(start).Seconds(), float64(ms.BytesRead-last)/(1<<20), ms.BytesRead>>20,
				cs.Held>>20, cs.Pieces, cs.Partial, cs.Evictions, cs.Misses,
				ts.ChunksReadUseful.Int64(), ts.ChunksReadWasted.Int64(),
				ss.Evicted, ss.Fetched, ss.Cancelled, len(sw.Claimed()))
			last = ms.BytesRead
			// One letter per piece from the reader's: C complete and
			// held, E complete but not held (evicted), p partial, r
			// readahead or now priority, . nothing.
			t := sw.Torrent()
			first := int(ms.BytesRead / t.Info().PieceLength)
			var row []byte
			for i := max(0, first-4); i < min(t.NumPieces(), first+48); i++ {
				st := t.Piece(i).State()
				c := byte('.')
				switch {
				case st.Complete && r.Cache().Has(sw.InfoHash(), i):
					c = 'C'
				case st.Complete:
					c = 'E'
				case st.Checking:
					c = 'h'
				case st.Partial:
					c = 'p'
				case st.Priority != 0:
					c = 'r'
				}
				if i == first {
					row = append(row, '|')
				}
				row = append(row, c)
			}
			fmt.Printf("trace    write errors %d (last %v)\n", werrs.Load(), lastErr.Load())
			fmt.Printf("trace    pieces from %d: %s\n", max(0, first-4), row)
			var b bytes.Buffer
			r.Client().WriteStatus(&b)
			for _, l := range strings.Split(b.String(), "\n") {
				if strings.Contains(l, "reqq") || strings.Contains(l, "requested pieces") || strings.Contains(l, "dr:") {
					if len(l) > 300 {
						l = l[:300] + "..."
					}
					fmt.Println("trace   ", strings.TrimSpace(l))
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// unchokeWatch records when a Transmission seed first uploads to a peer
// (flag U in its peer list: the peer is interested and unchoked), polled
// every 100 ms over RPC. Transmission unchokes only at its rechoke pulse,
// every 10 s in a phase set when it started the torrent, so how long a
// client waits for it depends on when the client came, not on the client.
type unchokeWatch struct {
	stop func() (at time.Time, addr string)
}

// watchUnchoke starts polling torrent id of seed for the first peer not at
// address skip that Transmission uploads to.
func watchUnchoke(seed *lab.Transmission, id int, skip string) *unchokeWatch {
	done := make(chan struct{})
	type found struct {
		at   time.Time
		addr string
	}
	res := make(chan found, 1)
	go func() {
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			if st, err := seed.Torrent(id); err == nil {
				for _, p := range st.Peers {
					if p.Address != skip && strings.Contains(p.FlagStr, "U") {
						res <- found{time.Now(), p.Address}
						return
					}
				}
			}
			select {
			case <-done:
				res <- found{}
				return
			case <-tk.C:
			}
		}
	}()
	return &unchokeWatch{stop: func() (time.Time, string) {
		close(done)
		f := <-res
		return f.at, f.addr
	}}
}

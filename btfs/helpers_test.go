package btfs_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/btfs"
	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/repeater"
)

// requireFUSE skips the test, or fails it when CI is set, when this
// machine cannot mount: no /dev/fuse or no fusermount3 (Debian: fuse3).
func requireFUSE(t *testing.T) {
	t.Helper()
	lab.Require(t, "fusermount3")
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		msg := "btfs: this machine cannot mount FUSE filesystems: " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set, so this fails the test)")
		}
		t.Skip(msg)
	}
	f.Close()
}

func peerConfig(ip netip.Addr) config.Peer {
	p := config.Default().Peer
	p.Listen = config.Addr(net.JoinHostPort(ip.String(), "0"))
	p.IPv6 = false
	return p
}

// startSeed seeds mi from the data under dir with an in-process client
// and returns its address.
func startSeed(t *testing.T, mi *metainfo.MetaInfo, dir string, uploadLimit config.Rate) torrent.PeerInfo {
	t.Helper()
	p := peerConfig(lab.NextAddr())
	p.UploadLimit = uploadLimit
	cl, err := repeater.NewClient(repeater.ClientOptions{Peer: p, Storage: storage.NewFile(dir)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	tt, err := cl.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	if err := tt.VerifyDataContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); !tt.Complete().Bool(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the seed's data did not verify")
		}
	}
	addr := cl.ListenAddrs()[0].(*net.TCPAddr)
	return torrent.PeerInfo{Addr: addr, Trusted: true}
}

// newRepeater starts a repeater with a cache of budget bytes.
func newRepeater(t *testing.T, budget int64) *repeater.Repeater {
	t.Helper()
	cfg := config.Default()
	cfg.Cache.Size, cfg.Repeater.SwarmCache = config.Size(budget), config.Size(budget)
	r, err := repeater.New(repeater.Options{Peer: peerConfig(lab.NextAddr()), Cache: cfg.Cache, Repeater: cfg.Repeater})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// mount mounts the swarm on a new directory, unmounted at cleanup.
func mount(t *testing.T, sw *repeater.Swarm, o btfs.Options) *btfs.Mount {
	t.Helper()
	o.Claims = sw
	m, err := btfs.New(t.TempDir(), sw.Torrent(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return m
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// watchBudget samples the cache's held bytes until stop and returns the
// peak.
func watchBudget(r *repeater.Repeater) (stop func() int64) {
	done := make(chan struct{})
	peak := make(chan int64)
	go func() {
		var p int64
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			if h := r.Cache().Stats().Held; h > p {
				p = h
			}
			select {
			case <-done:
				peak <- p
				return
			case <-tk.C:
			}
		}
	}()
	return func() int64 { close(done); return <-peak }
}

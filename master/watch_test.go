package master_test

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btslave/btslave/master"
)

func TestBackoff(t *testing.T) {
	minW, maxW := 2*time.Second, time.Minute
	for _, tc := range []struct {
		failures int
		err      error
		want     time.Duration
	}{
		{1, master.ErrUnreachable, 2 * time.Second},
		{2, master.ErrUnreachable, 4 * time.Second},
		{5, master.ErrGarbage, 32 * time.Second},
		{6, master.ErrGarbage, time.Minute},
		{1000, master.ErrGarbage, time.Minute},
		{1, master.ErrAuth, time.Minute},
	} {
		if got := master.Backoff(tc.failures, tc.err, minW, maxW); got != tc.want {
			t.Errorf("Backoff(%d, %v) = %v, want %v", tc.failures, tc.err, got, tc.want)
		}
	}
}

// flaky fails with err until ok is set.
type flaky struct {
	calls atomic.Int32
	bad   atomic.Bool
}

func (*flaky) Kind() string { return "test" }
func (f *flaky) PeerAddr(context.Context) (netip.AddrPort, error) {
	f.calls.Add(1)
	if f.bad.Load() {
		return netip.AddrPort{}, master.Garbage("test", errors.New("<html>"))
	}
	return netip.MustParseAddrPort("127.0.0.5:51413"), nil
}
func (f *flaky) Downloading(context.Context) ([]master.Torrent, error) {
	return []master.Torrent{{InfoHash: "ab", Name: "keep"}, {InfoHash: "cd", Name: "drop.sample"}}, nil
}

// Ensure that a failing master is polled with backoff, not in a tight
// loop, that the state says why, and that it recovers.
func TestWatcherBackoff(t *testing.T) {
	f := &flaky{}
	f.bad.Store(true)
	filter, _ := master.NewFilter("", `\.sample$`, "")
	polled := make(chan []master.Torrent, 10)
	w := master.NewWatcher(master.WatchOptions{Client: f, Filter: filter, Interval: 10 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond,
		OnPoll: func(_ context.Context, ts []master.Torrent, _ netip.AddrPort) { polled <- ts }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	time.Sleep(500 * time.Millisecond)
	// 20+40+80+80+80+80+80 ms: at most about 8 polls in 500 ms.
	if n := f.calls.Load(); n < 3 || n > 9 {
		t.Errorf("%d polls of a failing master in 500ms; want backoff (3..9)", n)
	}
	st := w.State()
	if st.State != master.StateGarbage || st.Error == "" || st.Failures < 3 {
		t.Errorf("state = %+v", st)
	}
	f.bad.Store(false)
	select {
	case ts := <-polled:
		if len(ts) != 1 || ts[0].Name != "keep" {
			t.Errorf("filtered torrents = %+v", ts)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no successful poll after the master recovered")
	}
	if st := w.State(); st.State != master.StateOK || st.Peer.Port() != 51413 {
		t.Errorf("state after recovery = %+v", st)
	}
	cancel()
	<-done
}

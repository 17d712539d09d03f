package master

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// States of a Watcher's master, as status shows them.
const (
	StateStarting    = "starting"
	StateOK          = "ok"
	StateUnreachable = "unreachable"
	StateAuth        = "auth failed"
	StateGarbage     = "garbage reply"
	StateError       = "error"
)

// WatchOptions configures a Watcher. Zero durations take the defaults.
type WatchOptions struct {
	Client Client
	Filter Filter
	Logger *slog.Logger
	// Interval is how often a healthy master is polled (default 5s).
	Interval time.Duration
	// MinBackoff is the first wait after a failure (default 2s); each
	// further failure doubles it up to MaxBackoff (default 2m). Refused
	// credentials wait MaxBackoff at once.
	MinBackoff, MaxBackoff time.Duration
	// OnPoll is told of every successful poll: the torrents that pass the
	// filter and the master's peer address. It runs on the Watcher's
	// goroutine.
	OnPoll func(ctx context.Context, ts []Torrent, peer netip.AddrPort)
}

// State is what a Watcher knows of its master.
type State struct {
	Kind  string
	State string // one of the State* constants
	// Error is the last failure ("" when the last poll worked), Failures
	// how many polls in a row failed, Since when State last changed and
	// NextPoll when the master is asked again.
	Error    string
	Failures int
	Since    time.Time
	LastOK   time.Time
	NextPoll time.Time
	Peer     netip.AddrPort
	Torrents []Torrent // the filtered list of the last successful poll
}

// Watcher polls a master with backoff.
type Watcher struct {
	o   WatchOptions
	log *slog.Logger

	mu sync.Mutex
	st State
}

// NewWatcher makes a Watcher; Run polls.
func NewWatcher(o WatchOptions) *Watcher {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 2 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Minute
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	w := &Watcher{o: o, log: o.Logger.With("component", "master", "kind", o.Client.Kind())}
	w.st = State{Kind: o.Client.Kind(), State: StateStarting, Since: time.Now()}
	return w
}

// State returns a copy of what the Watcher knows.
func (w *Watcher) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.st
	st.Torrents = append([]Torrent(nil), st.Torrents...)
	return st
}

// Backoff is the wait after failures failed polls in a row, the last
// failing with err.
func Backoff(failures int, err error, minWait, maxWait time.Duration) time.Duration {
	if errors.Is(err, ErrAuth) {
		return maxWait
	}
	d := minWait
	for i := 1; i < failures && d < maxWait; i++ {
		d *= 2
	}
	return min(d, maxWait)
}

// stateOf names the state a poll error puts the master in.
func stateOf(err error) string {
	switch {
	case err == nil:
		return StateOK
	case errors.Is(err, ErrAuth):
		return StateAuth
	case errors.Is(err, ErrGarbage):
		return StateGarbage
	case errors.Is(err, ErrUnreachable):
		return StateUnreachable
	}
	return StateError
}

// Run polls until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	for {
		wait := w.pollOnce(ctx)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// pollOnce asks the master once and returns how long to wait.
func (w *Watcher) pollOnce(ctx context.Context) time.Duration {
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	peer, err := w.o.Client.PeerAddr(pctx)
	var ts []Torrent
	if err == nil {
		ts, err = w.o.Client.Downloading(pctx)
	}
	if ctx.Err() != nil {
		return 0
	}
	now := time.Now()
	w.mu.Lock()
	prev := w.st.State
	next := stateOf(err)
	if next != prev {
		w.st.Since = now
	}
	w.st.State = next
	var wait time.Duration
	if err != nil {
		w.st.Failures++
		w.st.Error = err.Error()
		wait = Backoff(w.st.Failures, err, w.o.MinBackoff, w.o.MaxBackoff)
	} else {
		w.st.Failures = 0
		w.st.Error = ""
		w.st.LastOK = now
		w.st.Peer = peer
		kept := ts[:0]
		for _, t := range ts {
			if w.o.Filter.Match(t) {
				kept = append(kept, t)
			}
		}
		ts = kept
		w.st.Torrents = ts
		wait = w.o.Interval
	}
	w.st.NextPoll = now.Add(wait)
	failures := w.st.Failures
	w.mu.Unlock()

	switch {
	case err != nil && next != prev:
		w.log.Warn("master: "+next, "err", err, "retry_in", wait.Round(time.Millisecond))
	case err != nil:
		w.log.Debug("master: still "+next, "err", err, "failures", failures, "retry_in", wait.Round(time.Millisecond))
	case next != prev:
		w.log.Info("master: connected", "peer", peer, "downloading", len(ts))
	}
	if err == nil && w.o.OnPoll != nil {
		w.o.OnPoll(ctx, ts, peer)
	}
	return wait
}

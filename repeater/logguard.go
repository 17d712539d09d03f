package repeater

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// The library logs what peers send (an extended handshake it cannot parse
// is logged whole, with %q): 200 hostile connections wrote 12 MiB of log
// in 17 s. guardHandler sits between it and the daemon's log: it cuts
// every string to maxLogString bytes and lets a message through at most
// logBurst times per logWindow, then says how many it dropped.
const (
	maxLogString = 256
	logBurst     = 5
	logWindow    = 10 * time.Second
	// logKeyLen is how much of a message identifies it for the limit:
	// the library puts the peer and details after a fixed start.
	logKeyLen = 32
)

type guardHandler struct {
	next slog.Handler
	lim  *logLimiter
}

type logLimiter struct {
	mu   sync.Mutex
	seen map[string]*logCount
	now  func() time.Time
}

type logCount struct {
	start   time.Time
	n       int
	dropped int
}

// guardLogger wraps l's handler with the guard.
func guardLogger(l *slog.Logger) *slog.Logger {
	return slog.New(&guardHandler{next: l.Handler(), lim: &logLimiter{seen: map[string]*logCount{}, now: time.Now}})
}

func (h *guardHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return h.next.Enabled(ctx, lv)
}

func (h *guardHandler) Handle(ctx context.Context, r slog.Record) error {
	key := r.Message[:min(len(r.Message), logKeyLen)]
	ok, dropped := h.lim.allow(key)
	if !ok {
		return nil
	}
	out := slog.NewRecord(r.Time, r.Level, truncate(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(truncateAttr(a))
		return true
	})
	if dropped > 0 {
		out.AddAttrs(slog.Int("suppressed", dropped))
	}
	return h.next.Handle(ctx, out)
}

func (h *guardHandler) WithAttrs(as []slog.Attr) slog.Handler {
	for i := range as {
		as[i] = truncateAttr(as[i])
	}
	return &guardHandler{next: h.next.WithAttrs(as), lim: h.lim}
}

func (h *guardHandler) WithGroup(name string) slog.Handler {
	return &guardHandler{next: h.next.WithGroup(name), lim: h.lim}
}

// allow reports whether a record with this key may be logged now, and how
// many were dropped since the last one logged.
func (l *logLimiter) allow(key string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	c := l.seen[key]
	if c == nil || now.Sub(c.start) >= logWindow {
		dropped := 0
		if c != nil {
			dropped = c.dropped
		}
		if len(l.seen) > 4096 {
			clear(l.seen) // bounded: hostile peers choose the messages
		}
		l.seen[key] = &logCount{start: now, n: 1}
		return true, dropped
	}
	if c.n >= logBurst {
		c.dropped++
		return false, 0
	}
	c.n++
	return true, 0
}

func truncate(s string) string {
	if len(s) <= maxLogString {
		return s
	}
	return s[:maxLogString] + "…(truncated)"
}

func truncateAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, truncate(v.String()))
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, truncate(err.Error()))
		}
		if s, ok := v.Any().(interface{ String() string }); ok {
			return slog.String(a.Key, truncate(s.String()))
		}
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, x := range g {
			out[i] = truncateAttr(x)
		}
		return slog.Group(a.Key, out...)
	}
	return a
}

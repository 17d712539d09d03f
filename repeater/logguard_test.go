package repeater

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Ensure the library's log cannot be flooded by peers: long strings are
// cut, and a message repeated within the window is logged logBurst times
// and then summarised.
func TestGuardLogger(t *testing.T) {
	var buf bytes.Buffer
	l := guardLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Unix(0, 0)
	l.Handler().(*guardHandler).lim.now = func() time.Time { return now }
	huge := strings.Repeat("l", 64<<10)
	for range 200 {
		l.Warn("error parsing extended handshake message "+huge, "err", errors.New(huge), "payload", huge)
	}
	if buf.Len() > logBurst*4*(maxLogString+64) {
		t.Fatalf("200 hostile records wrote %d bytes of log", buf.Len())
	}
	if n := strings.Count(buf.String(), "\n"); n != logBurst {
		t.Errorf("%d lines, want %d", n, logBurst)
	}
	now = now.Add(logWindow)
	buf.Reset()
	l.Warn("error parsing extended handshake message x")
	if !strings.Contains(buf.String(), "suppressed=195") {
		t.Errorf("after the window: %q, want the count of suppressed records", buf.String())
	}
}

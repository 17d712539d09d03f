package feeds

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// Ensure the jitter never exceeds a quarter of the schedule's period.
func TestJitterCap(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		spec   string
		jitter time.Duration
		want   time.Duration
	}{
		{"@every 5s", time.Minute, 1250 * time.Millisecond},
		{"@every 15m", time.Minute, time.Minute},
		{"@hourly", 30 * time.Minute, 15 * time.Minute},
	} {
		sched, err := cron.ParseStandard(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := jitterCap(tc.jitter, sched, now); got != tc.want {
			t.Errorf("%s, jitter %v: %v, want %v", tc.spec, tc.jitter, got, tc.want)
		}
	}
}

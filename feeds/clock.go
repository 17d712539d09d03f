package feeds

import "time"

// Clock is the scheduler's time source. The zero Options use the system
// clock; tests pass a fake one to run hours of schedule in milliseconds.
type Clock interface {
	Now() time.Time
	// TimerAt returns a timer that fires once at t, or at once if t has
	// passed. A deadline rather than a delay: a fake clock moved while
	// the timer is being set still fires it.
	TimerAt(t time.Time) Timer
}

// Timer is a one-shot timer from a Clock.
type Timer interface {
	// C delivers the time when the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) TimerAt(t time.Time) Timer { return systemTimer{time.NewTimer(time.Until(t))} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }

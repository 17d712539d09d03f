package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// pollInterval is how often waits check their condition.
const pollInterval = 100 * time.Millisecond

// startTimeout bounds how long a program may take to become ready.
const startTimeout = 20 * time.Second

// errExited is returned by waits whose process exited first.
var errExited = errors.New("process exited")

// poll calls check until it returns true, ctx ends or p (if not nil)
// exits. Errors from check are retried; the last one is wrapped into the
// error returned when ctx ends.
func poll(ctx context.Context, p *Process, check func() (bool, error)) error {
	var last error
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		ok, err := check()
		if ok {
			return nil
		}
		last = err
		var exited <-chan struct{}
		if p != nil {
			exited = p.exited
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last: %w)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-exited:
			// One more check: the condition may have been met on exit.
			if ok, _ := check(); ok {
				return nil
			}
			return fmt.Errorf("%s: %w: %v", p.name, errExited, p.waitErr)
		case <-tick.C:
		}
	}
}

// waitTCP waits until something accepts TCP connections on addr.
func waitTCP(ctx context.Context, p *Process, addr netip.AddrPort) error {
	return poll(ctx, p, func() (bool, error) {
		c, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err != nil {
			return false, err
		}
		c.Close()
		return true, nil
	})
}

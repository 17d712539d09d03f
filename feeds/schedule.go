package feeds

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// The service's schedule: each feed's cron times, its jitter, and the
// backoff after failures.

// poke wakes the scheduler loop.
func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run fetches each feed on its schedule until ctx is done, then waits for
// the fetches under way to stop. Each feed is first fetched within the
// jitter after the start, then at its schedule's times plus a random
// jitter. A failing feed is logged and retried after 1, 2, 4, ... minutes
// (Options.BackoffBase), at most its schedule interval or an hour, while
// the other feeds go on. Run returns nil when ctx is done.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("feeds: Run called twice")
	}
	s.started = true
	now := s.clock.Now()
	for _, fr := range s.feeds {
		if fr.next.IsZero() {
			fr.next = now.Add(s.opts.Jitter(jitterCap(s.opts.Feeds.Jitter.Std(), fr.sched, now)))
			fr.status.NextRun = fr.next
		}
	}
	s.mu.Unlock()
	s.log.Info("feeds running", "feeds", len(s.Status()))

	var wg sync.WaitGroup
	defer func() {
		s.mu.Lock()
		for _, fr := range s.feeds {
			if fr.cancel != nil {
				fr.cancel()
			}
		}
		s.mu.Unlock()
		wg.Wait()
	}()
	for {
		s.mu.Lock()
		now := s.clock.Now()
		var earliest time.Time
		for _, fr := range s.feeds {
			if fr.busy {
				continue
			}
			if !fr.next.After(now) {
				s.start(ctx, &wg, fr)
				continue
			}
			if earliest.IsZero() || fr.next.Before(earliest) {
				earliest = fr.next
			}
		}
		s.mu.Unlock()

		var timer Timer
		var fire <-chan time.Time
		if !earliest.IsZero() {
			timer = s.clock.TimerAt(earliest)
			fire = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-fire:
		case <-s.wake:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// start launches a fetch of fr; s.mu is held.
func (s *Service) start(ctx context.Context, wg *sync.WaitGroup, fr *feedRun) {
	fctx, cancel := context.WithCancel(ctx)
	fr.busy, fr.cancel, fr.status.Running = true, cancel, true
	r := &run{
		feed:    fr.cfg,
		filter:  fr.filter,
		fetch:   s.opts.newFetcher(s.opts.Feeds),
		now:     s.clock.Now(),
		catalog: s.catalog,
		state:   new(fr.state),
	}
	wg.Go(func() {
		defer cancel()
		begin := time.Now()
		res, err := r.do(fctx)
		s.finish(ctx, fr, r.state, res, err, time.Since(begin))
	})
}

// finish reports a fetch's new entries, records its outcome and schedules
// the next fetch.
func (s *Service) finish(ctx context.Context, fr *feedRun, st *FeedState, res *Result, err error, took time.Duration) {
	name := fr.cfg.Name
	if err == nil {
		// The entries are committed whatever becomes of the feed now.
		for i := range res.Items {
			ir := &res.Items[i]
			if ir.Err != nil {
				level := slog.LevelInfo
				if errors.Is(ir.Err, ErrNoLink) {
					level = slog.LevelDebug // a feed's news item, not a torrent
				}
				s.log.Log(ctx, level, "feed item skipped", "feed", name, "item", clip(redactURL(ir.Item.label()), 120), "err", ir.Err)
			}
			if ir.New && ir.Entry != nil && s.opts.OnNew != nil {
				s.opts.OnNew(*ir.Entry)
			}
		}
		kept, isNew, errs := res.Counts()
		s.log.Info("feed fetched", "feed", name, "items", len(res.Items), "kept", kept, "new", isNew, "item_errors", errs, "not_modified", res.NotModified, "took", took.Round(time.Millisecond))
	}

	s.mu.Lock()
	defer s.poke()
	defer s.mu.Unlock()
	fr.busy, fr.cancel, fr.status.Running = false, nil, false
	if s.feeds[name] != fr || ctx.Err() != nil {
		// Removed, replaced or shutting down: nothing to schedule.
		return
	}
	now := s.clock.Now()
	if err != nil {
		// Keep the validators and Seen of the last good fetch: adopting
		// an ETag whose items were not stored would hide them for good.
		fs := fr.state
		fs.Failures++
		fs.LastError = err.Error()
		fs.LastFetch = now
		delay := s.backoff(fr.sched, now, fs.Failures)
		fr.next = now.Add(delay)
		fs.NextRetry = fr.next
		fr.state = fs
		fr.status.LastError, fr.status.Failures = fs.LastError, fs.Failures
		fr.status.FetchErrors++
		s.log.Warn("feed failed", "feed", name, "err", err, "failures", fs.Failures, "retry_in", delay)
	} else {
		st.Failures, st.LastError, st.NextRetry = 0, "", time.Time{}
		st.LastFetch, st.LastSuccess = now, now
		fr.state = *st
		fr.next = fr.sched.Next(now).Add(s.opts.Jitter(jitterCap(s.opts.Feeds.Jitter.Std(), fr.sched, now)))
		fr.status.LastError, fr.status.Failures = "", 0
		fr.status.LastSuccess = now
		fr.status.NotModified = res.NotModified
		if res.NotModified {
			fr.status.New = 0
		} else {
			fr.status.Items = len(res.Items)
			fr.status.Kept, fr.status.New, fr.status.ItemErrors = res.Counts()
		}
	}
	if perr := s.store.PutState(name, fr.state); perr != nil {
		s.log.Warn("store feed state", "feed", name, "err", perr)
	}
	fr.status.LastFetch = now
	fr.status.NextRun = fr.next
	fr.status.Fetches++
}

// backoff is the retry delay after failures failed fetches in a row:
// BackoffBase doubled per failure, at most MaxBackoff and the schedule's
// interval.
// jitterCap bounds the jitter to a quarter of the schedule's period, so
// that a feed run every few seconds is not delayed by a whole minute.
func jitterCap(jitter time.Duration, sched cron.Schedule, now time.Time) time.Duration {
	if sched == nil {
		return jitter
	}
	a := sched.Next(now)
	if period := sched.Next(a).Sub(a); period > 0 && jitter > period/4 {
		return period / 4
	}
	return jitter
}

func (s *Service) backoff(sched cron.Schedule, now time.Time, failures int) time.Duration {
	limit := s.opts.MaxBackoff
	if t1 := sched.Next(now); !t1.IsZero() {
		if iv := sched.Next(t1).Sub(t1); iv > 0 && iv < limit {
			limit = iv
		}
	}
	d := s.opts.BackoffBase
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/internal/api"
)

// Feeds lists every feed, configured and added, with its state.
func (a *App) Feeds(context.Context) []api.Feed {
	defs := map[string]config.Feed{}
	for _, f := range a.cfg.Feeds.Feed {
		defs[f.Name] = f
	}
	if added, err := a.feeds.Store().ListFeeds(); err == nil {
		for _, f := range added {
			if _, ok := defs[f.Name]; !ok {
				defs[f.Name] = f
			}
		}
	}
	out := []api.Feed{}
	for _, st := range a.feeds.Status() {
		f := api.Feed{
			Name: st.Name, Kind: st.Kind, Source: st.Source, Added: st.Added,
			Running: st.Running, Fetches: st.Fetches, FetchErrors: st.FetchErrors,
			LastFetch: st.LastFetch, LastSuccess: st.LastSuccess, NotModified: st.NotModified,
			Items: st.Items, Kept: st.Kept, New: st.New, ItemErrors: st.ItemErrors,
			LastError: st.LastError, Failures: st.Failures, NextRun: st.NextRun,
		}
		if d, ok := defs[st.Name]; ok {
			f.Schedule, f.Include, f.Exclude, f.Category = string(d.Schedule), d.Include, d.Exclude, d.Category
			f.MinSize, f.MaxSize = int64(d.MinSize), int64(d.MaxSize)
			if d.MaxAge > 0 {
				f.MaxAge = humanDuration(d.MaxAge.Std())
			}
			if f.Schedule == "" {
				f.Schedule = string(a.cfg.Feeds.Schedule)
			}
		}
		out = append(out, f)
	}
	return out
}

// maxFeedItems bounds the items GET /api/v1/feeds/{name}/items lists.
const maxFeedItems = 500

// FeedItems lists the catalog entries the feed name offered, newest first
// (the catalog's order).
func (a *App) FeedItems(_ context.Context, name string) ([]api.FeedItem, error) {
	known := false
	for _, st := range a.feeds.Status() {
		known = known || st.Name == name
	}
	if !known {
		return nil, fmt.Errorf("%w: no feed %q", api.ErrNotFound, name)
	}
	entries, err := a.feeds.Catalog().ListMeta()
	if err != nil {
		return nil, err
	}
	out := []api.FeedItem{}
	for _, e := range entries {
		if !slices.Contains(e.Feeds, name) {
			continue
		}
		out = append(out, api.FeedItem{InfoHash: e.Key(), Name: e.Name, Title: e.Title, Size: e.Size, FirstSeen: e.FirstSeen,
			Published: e.Published, Seeders: e.Seeders, Peers: e.Peers})
		if len(out) == maxFeedItems {
			break
		}
	}
	return out, nil
}

// humanDuration writes d as the configuration would: "7d", "36h", "90m".
func humanDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// FeedFromRequest turns an API request into a feed definition; a bad
// size, duration or schedule is api.ErrBadRequest.
func FeedFromRequest(req api.FeedRequest) (config.Feed, error) {
	f := config.Feed{Name: strings.TrimSpace(req.Name), Kind: req.Kind, URL: strings.TrimSpace(req.URL), Dir: strings.TrimSpace(req.Dir),
		Include: req.Include, Exclude: req.Exclude, Category: req.Category}
	var errs []error
	if req.Schedule != "" {
		if err := f.Schedule.UnmarshalText([]byte(req.Schedule)); err != nil {
			errs = append(errs, fmt.Errorf("schedule: %w", err))
		}
	}
	for _, sz := range []struct {
		name, v string
		dst     *config.Size
	}{{"min_size", req.MinSize, &f.MinSize}, {"max_size", req.MaxSize, &f.MaxSize}} {
		if sz.v == "" {
			continue
		}
		if err := sz.dst.UnmarshalText([]byte(sz.v)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", sz.name, err))
		}
	}
	if req.MaxAge != "" {
		if err := f.MaxAge.UnmarshalText([]byte(req.MaxAge)); err != nil {
			errs = append(errs, fmt.Errorf("max_age: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return config.Feed{}, fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	return f, nil
}

// AddFeed adds a feed at run time; it is kept in the database and
// fetched at once.
func (a *App) AddFeed(ctx context.Context, req api.FeedRequest) (api.Feed, error) {
	f, err := FeedFromRequest(req)
	if err != nil {
		return api.Feed{}, err
	}
	if err := a.feeds.Add(f); err != nil {
		if errors.Is(err, feeds.ErrBadFeed) || errors.Is(err, feeds.ErrFeedExists) {
			return api.Feed{}, fmt.Errorf("%w: %v", api.ErrBadRequest, err)
		}
		return api.Feed{}, err
	}
	name := f.Name
	if name == "" {
		name = f.URL + f.Dir
	}
	for _, st := range a.Feeds(ctx) {
		if st.Name == name {
			return st, nil
		}
	}
	return api.Feed{Name: name, Added: true}, nil
}

// RemoveFeed removes a feed added at run time; a configured feed is
// refused (remove it from the file).
func (a *App) RemoveFeed(_ context.Context, name string) error {
	err := a.feeds.Remove(name)
	switch {
	case errors.Is(err, feeds.ErrConfigFeed):
		file := a.cfg.File
		if file == "" {
			file = "the configuration file"
		}
		return fmt.Errorf("%w: feed %q comes from %s, not from 'btslave feeds add': delete its [[feeds.feed]] block there and restart btslave",
			api.ErrBadRequest, name, file)
	case errors.Is(err, feeds.ErrFeedNotFound):
		return fmt.Errorf("%w: no feed is named %q; 'btslave feeds list' shows them", api.ErrBadRequest, name)
	}
	return err
}

// Ranking is the autopilot's last ranking.
func (a *App) Ranking(context.Context) api.Ranking {
	if a.auto == nil {
		return api.Ranking{Note: "the autopilot is off (auto.enabled = false)", Slots: a.cfg.Repeater.MaxSwarms, Swarms: []api.RankedSwarm{}}
	}
	return a.auto.Ranking()
}

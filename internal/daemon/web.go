package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/buildinfo"
)

// TestFeed fetches a feed once with the daemon's [feeds] caps and says
// what its filters keep and why, as "btslave feeds test" does; nothing is
// stored. A bad definition is api.ErrBadRequest, as for AddFeed.
func (a *App) TestFeed(ctx context.Context, req api.FeedRequest) (api.FeedTest, error) {
	f, err := FeedFromRequest(req)
	if err != nil {
		return api.FeedTest{}, err
	}
	res, err := feeds.Test(ctx, feeds.Options{Feeds: a.cfg.Feeds, Version: buildinfo.String()}, f)
	if errors.Is(err, feeds.ErrBadFeed) {
		return api.FeedTest{}, fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	if err != nil {
		return api.FeedTest{}, fmt.Errorf("%w: feed %s: %v", api.ErrBadRequest, cmp.Or(f.Name, f.URL, f.Dir), err)
	}
	out := api.FeedTest{Feed: res.Feed, NotModified: res.NotModified, Items: []api.FeedTestItem{}}
	for _, it := range res.Items {
		ti := api.FeedTestItem{Title: it.Item.Title, Size: it.Item.Size, InfoHash: it.Item.InfoHash, Kept: it.Kept, Error: it.Err != nil, Why: it.Why}
		if en := it.Entry; en != nil {
			ti.Title = cmp.Or(ti.Title, en.Name)
			ti.Size = max(ti.Size, en.Size)
			ti.InfoHash = en.Key()
		}
		ti.Title = cmp.Or(ti.Title, it.Item.Torrent, it.Item.Magnet)
		if ti.Kept {
			out.Kept++
		}
		out.Items = append(out.Items, ti)
	}
	return out, nil
}

// nextSteps tells a new user what to do when the daemon has no feed and
// no swarm: nothing is happening, and nothing else would say why.
func (a *App) nextSteps() []string {
	if len(a.cfg.Feeds.Feed) > 0 || len(a.rep.Swarms()) > 0 {
		return nil
	}
	if added, err := a.feeds.Store().ListFeeds(); err != nil || len(added) > 0 {
		return nil
	}
	return []string{
		"btslave has no feed and no swarm, so it has nothing to do.",
		"Add a feed of torrents to help: btslave feeds add URL",
		"or serve a torrent of your own: btslave repeat FILE",
		fmt.Sprintf("The dashboard is at http://%s/ (btslave web prints a login link).", a.api.Addr()),
	}
}

// logNextSteps logs the next steps once, at the start, when there are any.
func (a *App) logNextSteps() {
	if steps := a.nextSteps(); len(steps) > 0 {
		args := []any{}
		for i, s := range steps[1:] {
			args = append(args, fmt.Sprintf("step%d", i+1), s)
		}
		a.log.Info(steps[0], args...)
	}
}

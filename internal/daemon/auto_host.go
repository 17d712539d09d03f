package daemon

import (
	"fmt"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/feeds"
	"github.com/btslave/btslave/internal/rank"
	"github.com/btslave/btslave/repeater/wire"
)

// The App is the autopilot's host: these methods are its autoHost.

// servedSwarms lists the swarms being served, with what the autopilot
// scores them by: origin, trackers, our standing there, connected peers.
func (a *App) servedSwarms() []servedSwarm {
	var out []servedSwarm
	for _, sw := range a.rep.Swarms() {
		ih := sw.InfoHash()
		o := a.origin(ih)
		s := servedSwarm{ih: ih, name: sw.Torrent().Name(), origin: o.origin, joined: o.joined}
		if ann := sw.Announcer(); ann != nil {
			s.announced = map[string]announceState{}
			for _, st := range ann.Status() {
				s.trackers = append(s.trackers, st.URL)
				s.announced[st.URL] = announceState{lastSuccess: st.LastSuccess, lastEvent: st.LastEvent, pausedRefused: st.PausedRefused}
			}
		}
		if n := a.rep.NumPieces(ih); n > 0 {
			s.seen = seenOf(a.client.Wire.Peers(ih), n)
		}
		out = append(out, s)
	}
	return out
}

// seenOf sorts the connected peers of a torrent of n pieces into seeds
// (every piece), partial seeds (upload_only, a piece missing) and
// downloaders (the rest).
func seenOf(peers []wire.PeerState, n int) *rank.Seen {
	var s rank.Seen
	for i := range peers {
		p := &peers[i]
		switch {
		case p.HaveAll || p.Have.Count() >= n:
			s.Seeds++
		case p.PeerUploadOnly:
			s.PartialSeeds++
		default:
			s.Downloaders++
		}
	}
	return &s
}

// joinEntry joins a catalog entry's swarm for the autopilot: from its
// .torrent when the feed gave one, else from its magnet link (with the
// entry's trackers when the link names none). The swarm is not recorded:
// after a restart the autopilot chooses again.
func (a *App) joinEntry(e *feeds.Entry) (metainfo.Hash, error) {
	if e == nil {
		return metainfo.Hash{}, fmt.Errorf("no catalog entry")
	}
	if e.Torrent == nil && a.feeds != nil { // the ranking lists entries without it
		full, ok, err := a.feeds.Catalog().Get(e.Key())
		if err != nil {
			return metainfo.Hash{}, err
		}
		if ok {
			e = &full
		}
	}
	rec := swarmRecord{Torrent: e.Torrent, Added: time.Now()}
	if len(rec.Torrent) == 0 {
		rec.Magnet = e.Magnet
		if rec.Magnet == "" && e.InfoHashV1 != "" {
			rec.Magnet = "magnet:?xt=urn:btih:" + e.InfoHashV1
		}
	}
	spec, err := rec.spec()
	if err != nil {
		return metainfo.Hash{}, err
	}
	if len(spec.Trackers) == 0 {
		spec.Trackers = e.Trackers
	}
	a.joinMu.Lock()
	defer a.joinMu.Unlock()
	sw, err := a.rep.Join(spec)
	if err != nil {
		return metainfo.Hash{}, err
	}
	ih := sw.InfoHash()
	a.setOrigin(ih, rank.OriginAuto)
	return ih, nil
}

// leaveAuto leaves a swarm the autopilot joined; the owner's are never
// left this way.
func (a *App) leaveAuto(ih metainfo.Hash, why string) {
	if a.origin(ih).origin != rank.OriginAuto {
		a.log.Warn("autopilot: refusing to leave a swarm of the owner's", "infohash", ih.HexString())
		return
	}
	a.leaveFor(ih, why)
}

package tracker

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// The scrape sync, by the rules of opentracker's design notes: a tracker
// that has run BeaconDelay sends a beacon with its torrent count every
// BeaconInterval. One that sees a beacon from a tracker with more than
// twice its torrents waits InquireWait for the other beacons, then
// inquires to the one with the most. That one answers with tell packets
// for all its torrents, and every tracker that receives them raises its
// downloaded counts to the told ones. A tell seen ends a wait, and no
// beacon is acted on within TellQuiet of one.

// schedule sends what is due: a beacon, an inquiry, tell packets.
func (s *syncer) schedule(now time.Time) {
	t := s.t
	s.mu.Lock()
	beacon := !now.Before(s.nextBeacon)
	if beacon {
		s.nextBeacon = now.Add(s.o.BeaconInterval)
	}
	var inquire []byte
	var inquireTo []netip.AddrPort
	if !s.wantUntil.IsZero() && !now.Before(s.wantUntil) {
		inquire = appendSyncHeader(make([]byte, 0, 64), t.id, syncInquire, s.auth())
		inquire = binary.BigEndian.AppendUint32(inquire, s.candidate)
		inquireTo = []netip.AddrPort{s.candidateAddr}
		if s.o.Multicast {
			inquireTo = nil // to the group and the peers
		}
		s.wantUntil = time.Time{} // then wait for the next round of beacons
		t.log.Info("sync: asking for a scrape tell", "tracker", hexID(s.candidate), "torrents", s.candidateN)
	}
	s.mu.Unlock()
	if beacon {
		b := appendSyncHeader(make([]byte, 0, 64), t.id, syncBeacon, s.auth())
		s.send(binary.BigEndian.AppendUint64(b, uint64(max(t.state.tot.torrents.Load(), 0))), nil)
	}
	if inquire != nil {
		s.send(inquire, inquireTo)
	}
	s.tellSome(now)
}

// onBeacon notes a beacon from sender (at from) with its torrent count.
func (s *syncer) onBeacon(sender uint32, from netip.AddrPort, count uint64) {
	ours := uint64(max(s.t.state.tot.torrents.Load(), 0))
	if count <= 2*ours {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lastTell.IsZero() && now.Sub(s.lastTell) < s.o.TellQuiet {
		return // a scrape sync is going on
	}
	if s.wantUntil.IsZero() {
		s.wantUntil = now.Add(s.o.InquireWait)
		s.candidateN = 0
	}
	if count > s.candidateN {
		s.candidate, s.candidateAddr, s.candidateN = sender, from, count
	}
}

// startTell starts telling our counts to to (restarting from the first
// torrent if a tell is under way, so that every inquirer hears all).
func (s *syncer) startTell(to netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.tellTo, to) {
		s.tellTo = append(s.tellTo, to)
	}
	s.tellShard = 0
	s.tellGen++
	s.t.log.Info("sync: telling our downloaded counts", "to", to)
}

// tellSome sends the tell packets of the next shards, at least
// tellPacketsPerTick of them unless the tell ends, and ends the tell
// after the last shard.
func (s *syncer) tellSome(now time.Time) {
	s.mu.Lock()
	to, shard, gen := s.tellTo, s.tellShard, s.tellGen
	s.mu.Unlock()
	if len(to) == 0 {
		return
	}
	if slices.Contains(to, syncGroup) {
		to = nil // everyone
	}
	limit := syncMaxPacket
	if s.auth() {
		limit -= syncTrailerLen
	}
	minute := now.Unix() / 60
	newPkt := func() []byte { return appendSyncHeader(make([]byte, 0, syncMaxPacket), s.t.id, syncTell, s.auth()) }
	pkt := newPkt()
	var full [][]byte
	for ; shard < shardCount && len(full) < tellPacketsPerTick; shard++ {
		s.t.state.eachShardCounter(shard, func(c counter) {
			if c.downloaded == 0 {
				return
			}
			pkt = appendTellEntry(pkt, c.ih, uint32(min(max(minute-c.active, 0), 1<<32-1)), c.downloaded)
			if len(pkt)+syncTellLen > limit {
				full = append(full, pkt)
				pkt = newPkt()
			}
		})
	}
	if len(pkt) > syncHeaderLen {
		full = append(full, pkt)
	}
	for _, p := range full {
		s.send(p, to)
	}
	s.mu.Lock()
	if s.tellGen == gen { // no new inquirer restarted the tell meanwhile
		s.tellShard = shard
		if shard == shardCount {
			s.tellTo, s.tellShard = nil, 0
		}
	}
	s.mu.Unlock()
}

// applyTell merges a tell's counts by maximum.
func (s *syncer) applyTell(body []byte) {
	t := s.t
	now := time.Now()
	s.mu.Lock()
	s.lastTell = now
	s.wantUntil = time.Time{} // our inquiry was answered, or another one is
	s.mu.Unlock()
	minute := now.Unix() / 60
	tellEntries(body, func(ih metainfo.Hash, offset uint32, downloaded uint64) {
		if !t.allowed(ih) {
			return
		}
		if t.state.merge(counter{ih: ih, downloaded: downloaded, active: minute - int64(offset)}) {
			t.state.markDirty(ih)
		}
	})
}

func (s *syncer) stats() SyncStats {
	st := SyncStats{Multicast: s.o.Multicast, Auth: s.auth(),
		PacketsIn: s.packetsIn.Load(), PacketsOut: s.packetsOut.Load(), Rejected: s.rejected.Load()}
	for _, p := range s.o.Peers {
		st.Peers = append(st.Peers, p.String())
	}
	s.mu.Lock()
	st.LastReject, st.Telling = s.lastReject, len(s.tellTo) > 0
	s.mu.Unlock()
	return st
}

func beUint32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func hexID(id uint32) string {
	const digits = "0123456789abcdef"
	var b [8]byte
	for i := range b {
		b[7-i] = digits[id>>(4*i)&15]
	}
	return string(b[:])
}

package friendsvc

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/btslave/btslave/friends"
)

// Meter says, on the debtor's side, how many bytes friends may be
// credited for having delivered to our master (docs/friends-iou.md,
// "What the debtor countersigns").
type Meter interface {
	// Watch starts counting what arrives at our master for infoHash, from
	// now on: a friend accepted to help with it.
	Watch(ctx context.Context, infoHash string, friend ed25519.PublicKey)
	// Allow is the most friend may be credited now for infoHash.
	Allow(ctx context.Context, friend ed25519.PublicKey, infoHash string) uint64
	// Credited records that n bytes were countersigned to friend.
	Credited(friend ed25519.PublicKey, infoHash string, n uint64)
}

// Received reads our master's payload-downloaded counter for a torrent
// (master.Counter).
type Received func(ctx context.Context, infoHash string) (int64, error)

// MasterMeter is the Meter of a daemon whose master client has a
// downloaded counter per torrent: what friends may be credited for a
// torrent, together, is what the master downloaded since the first friend
// was watched for it, minus what was already credited to any friend. A
// friend cannot be credited for bytes our master never received; it can be
// credited for bytes the rest of the swarm sent while it helped, which is
// the bound's known looseness (docs/friends-iou.md).
type MasterMeter struct {
	read Received
	log  *slog.Logger
	now  func() time.Time

	mu  sync.Mutex
	per map[string]*arrival
}

type arrival struct {
	since    time.Time
	base     int64 // counter when watching began; -1 until read
	last     int64 // counter at the last good read
	credited uint64
	friends  map[string]uint64 // credited per friend key
}

// NewMasterMeter makes a MasterMeter reading counters with read (nil: the
// master has none, and nothing is ever allowed).
func NewMasterMeter(read Received, log *slog.Logger) *MasterMeter {
	if log == nil {
		log = slog.Default()
	}
	return &MasterMeter{read: read, log: log, now: time.Now, per: map[string]*arrival{}}
}

// Watch takes the counter's baseline for infoHash, if not watched yet. If
// the master does not answer, the baseline is taken at the first reading
// that works: bytes that arrived before it are never creditable.
func (m *MasterMeter) Watch(ctx context.Context, infoHash string, friend ed25519.PublicKey) {
	m.mu.Lock()
	a, ok := m.per[infoHash]
	if !ok {
		a = &arrival{since: m.now(), base: -1, friends: map[string]uint64{}}
		m.per[infoHash] = a
	}
	if _, ok := a.friends[string(friend)]; !ok {
		a.friends[string(friend)] = 0
	}
	m.mu.Unlock()
	m.readNow(ctx, infoHash)
}

// readNow reads the counter and returns it (or the last good reading).
func (m *MasterMeter) readNow(ctx context.Context, infoHash string) (base, now int64) {
	var n int64 = -1
	if m.read != nil {
		v, err := m.read(ctx, infoHash)
		if err != nil {
			m.log.Warn("friends: cannot read the master's counter; crediting by the last reading", "info_hash", infoHash, "err", err)
		} else {
			n = v
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.per[infoHash]
	if a == nil {
		return -1, -1
	}
	if n >= 0 {
		if a.base < 0 || n < a.base {
			// First reading, or the master's counter went back (the
			// torrent was removed and added again): count from here.
			a.base, a.credited = n, 0
		}
		a.last = n
	}
	return a.base, a.last
}

// Allow is what arrived since Watch and no friend was credited for. A
// swarm not watched yet (we restarted while a friend helped) starts being
// watched now, so later bytes become creditable.
func (m *MasterMeter) Allow(ctx context.Context, friend ed25519.PublicKey, infoHash string) uint64 {
	m.mu.Lock()
	_, ok := m.per[infoHash]
	m.mu.Unlock()
	if !ok {
		m.Watch(ctx, infoHash, friend)
		return 0
	}
	base, now := m.readNow(ctx, infoHash)
	if base < 0 || now <= base {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.per[infoHash]
	arrived := uint64(now - base)
	if arrived <= a.credited {
		return 0
	}
	return arrived - a.credited
}

// Credited records n countersigned bytes.
func (m *MasterMeter) Credited(friend ed25519.PublicKey, infoHash string, n uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.per[infoHash]; a != nil {
		a.credited += n
		a.friends[string(friend)] += n
	}
}

// Arrival is one watched swarm as `btslave status` shows it.
type Arrival struct {
	InfoHash string
	Since    time.Time
	// Arrived is what our master downloaded since Since (as of the last
	// reading); Credited what friends were countersigned for, in all and
	// per friend.
	Arrived, Credited uint64
	Friends           []FriendCredit
}

// FriendCredit is one friend's part of an Arrival.
type FriendCredit struct {
	Friend   friends.ID
	Credited uint64
}

// Arrivals lists the watched swarms, newest first.
func (m *MasterMeter) Arrivals() []Arrival {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Arrival, 0, len(m.per))
	for ih, a := range m.per {
		r := Arrival{InfoHash: ih, Since: a.since, Credited: a.credited}
		if a.base >= 0 && a.last > a.base {
			r.Arrived = uint64(a.last - a.base)
		}
		for k, n := range a.friends {
			r.Friends = append(r.Friends, FriendCredit{Friend: friends.NewID(ed25519.PublicKey(k)), Credited: n})
		}
		sort.Slice(r.Friends, func(i, j int) bool { return r.Friends[i].Credited > r.Friends[j].Credited })
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Since.After(out[j].Since) })
	return out
}

var _ Meter = (*MasterMeter)(nil)

package ledger

import (
	"crypto/ed25519"
	"fmt"
	"sort"
)

// Request is one ask for a swarm slot: our own master's (From nil) or a
// friend's help request.
type Request struct {
	From     ed25519.PublicKey // nil: our own master
	InfoHash string
	Name     string // the torrent's name, "" if unknown (a bare magnet)
	Size     int64  // torrent bytes, 0 if unknown
}

// Limits is what the owner allows and what is in use when a request is
// weighed.
type Limits struct {
	CreditLimit   int64 // friends.credit_limit: how far a friend may owe us
	StarterCredit int64 // friends.starter_credit: the same for a friend with no IOU yet
	Swarms        int   // swarms served now
	MaxSwarms     int   // repeater.max_swarms
	FreeSwarms    int   // of Swarms, free repeating ones a request may displace
	CacheFree     int64 // bytes the cache can still take; < 0 means no limit
	SwarmCache    int64 // the most one swarm holds of the cache; 0 no cap
	UploadFull    bool  // the upload limit is saturated
	// Allowed is the owner's filters (docs/friends-iou.md, "Help
	// policy"): nil allows everything; else it says whether the torrent
	// may be joined and, if not, why.
	Allowed func(r Request) (ok bool, why string)
}

// Decision is the answer to a Request, with the reason sent in the help
// reply and logged.
type Decision struct {
	Accept bool
	// Displace says a free repeating swarm must make room.
	Displace bool
	Reason   string
}

// Decide weighs one request: the owner's filters and caps first (never
// broken for anyone), then, for a friend, its balance: it may owe us up to
// CreditLimit, or StarterCredit while it has no IOU with us either way.
func (s *Store) Decide(r Request, l Limits) (Decision, error) {
	who := "own master"
	if r.From != nil {
		who = "friend " + idOf(r.From).Short()
	}
	if l.Allowed != nil {
		if ok, why := l.Allowed(r); !ok {
			return Decision{Reason: "the owner's filters exclude it: " + why}, nil
		}
	}
	if l.UploadFull {
		return Decision{Reason: "upload limit reached"}, nil
	}
	need := r.Size
	if l.SwarmCache > 0 {
		need = min(need, l.SwarmCache)
	}
	if l.CacheFree >= 0 && need > l.CacheFree {
		return Decision{Reason: fmt.Sprintf("torrent of %d bytes needs %d bytes of cache, %d free (not pinned)", r.Size, need, l.CacheFree)}, nil
	}
	displace := false
	if l.Swarms >= l.MaxSwarms {
		if l.FreeSwarms <= 0 {
			return Decision{Reason: fmt.Sprintf("max_swarms %d reached, none free repeating to give up", l.MaxSwarms)}, nil
		}
		displace = true
	}
	if r.From == nil {
		return Decision{Accept: true, Displace: displace, Reason: who + " comes first"}, nil
	}
	b, err := s.BalanceOf(r.From)
	if err != nil {
		return Decision{}, err
	}
	limit, kind := l.CreditLimit, "credit_limit"
	if b.Given == 0 && b.Taken == 0 {
		limit, kind = l.StarterCredit, "starter_credit"
	}
	// The friend's balance is -Net; help while it is above -limit.
	if b.Net() < limit {
		return Decision{Accept: true, Displace: displace,
			Reason: fmt.Sprintf("%s balance %d bytes, above -%s %d", who, -b.Net(), kind, limit)}, nil
	}
	return Decision{Reason: fmt.Sprintf("%s balance %d bytes, not above -%s %d; it can earn credit by helping us", who, -b.Net(), kind, limit)}, nil
}

// Order sorts requests the way slots are handed out: our own master first,
// then friends by balance, best (owing us least, or owed by us most) first.
func (s *Store) Order(rs []Request) error {
	net := map[string]int64{}
	for _, r := range rs {
		if r.From == nil {
			continue
		}
		b, err := s.BalanceOf(r.From)
		if err != nil {
			return err
		}
		net[string(r.From)] = b.Net()
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i].From, rs[j].From
		if (a == nil) != (b == nil) {
			return a == nil
		}
		// A friend we owe (negative Net for us means they gave more) ranks
		// above one that owes us.
		return net[string(a)] < net[string(b)]
	})
	return nil
}

package friends

import (
	"fmt"
	"sort"
)

// Policy decides help requests by the [friends] settings.
type Policy struct {
	CreditLimit   int64 // bytes a friend may owe us
	StarterCredit int64 // credit a friend with no IOUs yet starts with
}

// Standing is what the policy needs to know about a requester.
type Standing struct {
	Friend bool
	// Balance is what the friend delivered to us minus what we delivered
	// to it, from the ledger.
	Balance int64
	// New is true while no IOU exists between us.
	New bool
}

// Capacity is our side of a help request: what is running and allowed.
type Capacity struct {
	Swarms, MaxSwarms   int
	CacheFree, Needed   int64 // bytes; Needed 0 if unknown
	UploadFull          bool  // the upload limit is already used up
	Filtered            bool  // the owner's filters exclude the torrent
	OwnMasterNeedsSlots bool  // our own master wants the spare capacity
}

// Decide says whether to help and, if not, why.
func (p Policy) Decide(s Standing, c Capacity) (bool, string) {
	switch {
	case !s.Friend:
		return false, "not a friend"
	case c.Filtered:
		return false, "excluded by our filters"
	case c.MaxSwarms > 0 && c.Swarms >= c.MaxSwarms:
		return false, fmt.Sprintf("at max_swarms (%d)", c.MaxSwarms)
	case c.Needed > 0 && c.Needed > c.CacheFree:
		return false, fmt.Sprintf("cache has %d bytes free, torrent needs %d", c.CacheFree, c.Needed)
	case c.UploadFull:
		return false, "upload limit in use"
	case c.OwnMasterNeedsSlots:
		return false, "busy helping our own master"
	}
	if b := p.Effective(s); b <= -p.CreditLimit {
		return false, fmt.Sprintf("balance %d is at or below -credit_limit %d", b, p.CreditLimit)
	}
	return true, ""
}

// Effective is the balance the policy uses: a new friend's starts at the
// starter credit.
func (p Policy) Effective(s Standing) int64 {
	if s.New {
		return s.Balance + p.StarterCredit
	}
	return s.Balance
}

// Request is one candidate for our spare capacity.
type Request struct {
	OwnMaster bool // our own master's torrent
	Friend    ID   // the requester, if a friend asked
	Standing  Standing
	InfoHash  string
}

// Order sorts candidates for spare capacity: our own master first, then
// friends by effective balance (most generous first), then free repeating
// (no friend), each group stable.
func (p Policy) Order(rs []Request) {
	rank := func(r Request) int {
		switch {
		case r.OwnMaster:
			return 0
		case r.Standing.Friend:
			return 1
		}
		return 2
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if rank(a) == 1 {
			return p.Effective(a.Standing) > p.Effective(b.Standing)
		}
		return false
	})
}

package ledger

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/btslave/btslave/friends"
)

// Account is one friend's balance with the IOUs that make it, for
// `btslave ledger` and the API.
type Account struct {
	Balance
	Net     int64  `json:"net"` // Given − Taken: positive when the friend owes us
	Entries []Line `json:"entries"`
}

// Line is one history entry seen from our side.
type Line struct {
	Time   time.Time `json:"time"`
	Dir    string    `json:"dir"` // "given" (we helped) or "taken" (it helped us)
	Seq    uint64    `json:"seq"`
	Delta  uint64    `json:"delta"`
	Total  uint64    `json:"total"`
	Reason string    `json:"reason"`
}

// Accounts returns every friend's account, best balance first, each with
// its history oldest first.
func (s *Store) Accounts() ([]Account, error) {
	bs, err := s.Balances()
	if err != nil {
		return nil, err
	}
	out := make([]Account, 0, len(bs))
	for _, b := range bs {
		a := Account{Balance: b, Net: b.Net()}
		for _, dir := range []string{"given", "taken"} {
			debtor, creditor := b.Key, s.self
			if dir == "taken" {
				debtor, creditor = s.self, b.Key
			}
			h, err := s.History(debtor, creditor)
			if err != nil {
				return nil, err
			}
			for _, e := range h {
				a.Entries = append(a.Entries, Line{Time: e.Time, Dir: dir, Seq: e.IOU.Seq, Delta: e.Delta, Total: e.IOU.Total, Reason: e.Reason})
			}
		}
		sort.SliceStable(a.Entries, func(i, j int) bool { return a.Entries[i].Time.Before(a.Entries[j].Time) })
		out = append(out, a)
	}
	return out, nil
}

// WriteReport prints the accounts as text: one line per friend, then why
// its balance is what it is. name gives a friend's display name ("" for
// none); the caller makes it terminal-safe.
func WriteReport(w io.Writer, accts []Account, name func(friends.ID) string) {
	if len(accts) == 0 {
		fmt.Fprintln(w, "no IOUs yet")
		return
	}
	for _, a := range accts {
		label := a.Friend.String()
		if name != nil && name(a.Friend) != "" {
			label = name(a.Friend) + " " + a.Friend.Short()
		}
		fmt.Fprintf(w, "%s: balance %+d bytes (we helped %d, it helped us %d)\n", label, a.Net, a.Given, a.Taken)
		for _, l := range a.Entries {
			sign := "+"
			if l.Dir == "taken" {
				sign = "-"
			}
			fmt.Fprintf(w, "  %s  %s%d  %s seq %d, total %d: %s\n", l.Time.UTC().Format(time.DateTime), sign, l.Delta, l.Dir, l.Seq, l.Total, l.Reason)
		}
	}
}

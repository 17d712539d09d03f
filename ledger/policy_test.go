package ledger

import (
	"crypto/ed25519"
	"strings"
	"testing"
)

// Ensure that Decide never breaks the owner's caps or filters, gives a new
// friend starter_credit, a known one credit_limit, and our master a slot
// whenever the caps allow.
func TestDecide(t *testing.T) {
	me, fi, newi := newIdentity(t), newIdentity(t), newIdentity(t)
	s := openT(t, me, Options{})
	f := openT(t, fi, Options{})
	exchange(t, s, f, 900, "we helped f") // f owes us 900

	base := Limits{CreditLimit: 1000, StarterCredit: 100, Swarms: 1, MaxSwarms: 4, CacheFree: -1}
	with := func(mod func(*Limits)) Limits { l := base; mod(&l); return l }
	cases := []struct {
		name     string
		from     ed25519.PublicKey
		size     int64
		l        Limits
		accept   bool
		displace bool
		reason   string
	}{
		{"own master", nil, 0, base, true, false, "own master"},
		{"friend within credit", fi.Public(), 0, base, true, false, "credit_limit"},
		{"friend beyond credit", fi.Public(), 0, with(func(l *Limits) { l.CreditLimit = 900 }), false, false, "credit_limit"},
		{"new friend, starter credit", newi.Public(), 0, base, true, false, "starter_credit"},
		{"new friend, no starter credit", newi.Public(), 0, with(func(l *Limits) { l.StarterCredit = 0 }), false, false, "starter_credit"},
		{"filters", nil, 0, with(func(l *Limits) { l.Allowed = func(Request) (bool, string) { return false, "excluded" } }), false, false, "filters"},
		{"max_swarms, none free", nil, 0, with(func(l *Limits) { l.Swarms = 4 }), false, false, "max_swarms"},
		{"max_swarms, displace free", fi.Public(), 0, with(func(l *Limits) { l.Swarms, l.FreeSwarms = 4, 1 }), true, true, ""},
		{"cache", nil, 5000, with(func(l *Limits) { l.CacheFree = 4999 }), false, false, "cache"},
		{"upload", nil, 0, with(func(l *Limits) { l.UploadFull = true }), false, false, "upload"},
	}
	for _, c := range cases {
		d, err := s.Decide(Request{From: c.from, InfoHash: "ab", Size: c.size}, c.l)
		if err != nil {
			t.Fatal(err)
		}
		if d.Accept != c.accept || d.Displace != c.displace || !strings.Contains(d.Reason, c.reason) {
			t.Errorf("%s: got %+v", c.name, d)
		}
	}
}

// Ensure that our master comes first, then friends that gave us most.
func TestOrder(t *testing.T) {
	me, gave, took := newIdentity(t), newIdentity(t), newIdentity(t)
	s := openT(t, me, Options{})
	g, k := openT(t, gave, Options{}), openT(t, took, Options{})
	exchange(t, g, s, 500, "g helped us")
	exchange(t, s, k, 500, "we helped k")
	rs := []Request{{From: took.Public()}, {From: gave.Public()}, {}}
	if err := s.Order(rs); err != nil {
		t.Fatal(err)
	}
	if rs[0].From != nil || !rs[1].From.Equal(gave.Public()) || !rs[2].From.Equal(took.Public()) {
		t.Fatalf("order: master, %s, %s; got %v", gave.ID().Short(), took.ID().Short(), rs)
	}
}

// Ensure that the report explains a balance by the IOUs that make it.
func TestReport(t *testing.T) {
	me, fi := newIdentity(t), newIdentity(t)
	s, f := openT(t, me, Options{}), openT(t, fi, Options{})
	exchange(t, s, f, 900, "helped f's master with aaaa")
	exchange(t, f, s, 100, "f helped our master with bbbb")
	accts, err := s.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	WriteReport(&b, accts, nil)
	for _, want := range []string{"balance +800 bytes (we helped 900, it helped us 100)", "+900  given seq 1, total 900: helped f's master with aaaa", "-100  taken seq 1, total 100: f helped our master with bbbb"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

package lab

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// Ensure the namespace prefix is refused unless it is an IPv4 prefix
// outside loopback and the namespace has no interface but loopback, and
// that a refused or absent prefix lets no address but loopback through.
func TestParseNetns(t *testing.T) {
	lo := []net.Interface{{Name: "lo", Flags: net.FlagUp | net.FlagLoopback}}
	eth := append(lo, net.Interface{Name: "eth0", Flags: net.FlagUp})
	onlyLo := func() ([]net.Interface, error) { return lo, nil }
	for _, c := range []struct {
		v      string
		ifs    func() ([]net.Interface, error)
		want   string // prefix, or "" for none
		errHas string
	}{
		{"", onlyLo, "", ""},
		{"10.77.0.0/16", onlyLo, "10.77.0.0/16", ""},
		{"10.77.3.9/16", onlyLo, "10.77.0.0/16", ""},
		{"10.0.0.0/8", onlyLo, "10.0.0.0/8", ""},
		{"10.77.0.0/16", func() ([]net.Interface, error) { return eth, nil }, "", "outside a network namespace of its own (interfaces [lo eth0])"},
		{"10.77.0.0/16", func() ([]net.Interface, error) { return []net.Interface{{Name: "eth0"}}, nil }, "", "interfaces [eth0]"},
		{"10.77.0.0/16", func() ([]net.Interface, error) { return nil, errors.New("no netlink") }, "", "no netlink"},
		{"10.77.0.0/24", onlyLo, "", "/8 to /16"},
		{"127.0.0.0/8", onlyLo, "", "outside 127.0.0.0/8"},
		{"fd00::/16", onlyLo, "", "IPv4"},
		{"10.77.0.0", onlyLo, "", "BTSLAVE_LAB_NETNS"},
	} {
		p, err := parseNetns(c.v, c.ifs)
		if c.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("%q: err %v, want one containing %q", c.v, err, c.errHas)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.v, err)
			continue
		}
		got := ""
		if p.IsValid() {
			got = p.String()
		}
		if got != c.want {
			t.Errorf("%q: prefix %v, want %q", c.v, p, c.want)
		}
	}
}

// Ensure lab addresses are loopback ones, or the namespace's when there
// is one, and NextAddr hands out the namespace's.
func TestLabAddrNetns(t *testing.T) {
	saved := netnsPrefix
	defer func() { netnsPrefix = saved }()
	in, out, lo := netip.MustParseAddr("10.77.4.5"), netip.MustParseAddr("10.78.0.2"), netip.MustParseAddr("127.3.4.5")
	netnsPrefix = netip.Prefix{}
	if !labAddr(lo) || labAddr(in) || checkLoopback(in) == nil {
		t.Errorf("without a namespace: loopback %v, %v %v", labAddr(lo), in, labAddr(in))
	}
	netnsPrefix = netip.MustParsePrefix("10.77.0.0/16")
	if !labAddr(lo) || !labAddr(in) || labAddr(out) || checkLoopback(in) != nil || checkLoopback(out) == nil {
		t.Errorf("in 10.77.0.0/16: %v %v %v", labAddr(lo), labAddr(in), labAddr(out))
	}
	if a := NextAddr(); !netnsPrefix.Contains(a) || a.As4()[3] < 2 || a.As4()[3] > 254 {
		t.Errorf("NextAddr %v, want one of 10.77.0.0/16 ending in .2 to .254", a)
	}
}

package lab

import (
	"fmt"
	"net"
	"net/netip"
	"os"
)

// NetnsEnv names the environment variable that moves the lab's peer
// addresses out of 127.0.0.0/8 into a prefix of a network namespace the
// caller made for the run, for example
//
//	unshare -n sh -c 'ip link set lo up && ip route add local 10.77.0.0/16 dev lo &&
//	  BTSLAVE_LAB_NETNS=10.77.0.0/16 ./repeater.test …'
//
// Transmission treats 127.0.0.0/8 as martian and never dials such a peer
// (LAB.md), so on loopback its leechers are fed only by the peers that
// dial them; with addresses from a namespace's prefix it dials as it does
// on the Internet. The lab refuses the prefix unless the process's network
// namespace has no interface but loopback, so that nothing sent to it can
// leave the machine, and the loopback guard (csrc/guard.c) lets programs
// reach it too. The shared services (tracker, RPC, WebUI) stay on
// [Loopback].
const NetnsEnv = "BTSLAVE_LAB_NETNS"

// netnsPrefix is the namespace's prefix, or the zero Prefix on loopback.
var netnsPrefix = mustNetns(os.Getenv(NetnsEnv), net.Interfaces)

// mustNetns parses v (empty for none) and checks that the namespace holds
// only a loopback interface; it panics otherwise, before any test runs.
func mustNetns(v string, interfaces func() ([]net.Interface, error)) netip.Prefix {
	p, err := parseNetns(v, interfaces)
	if err != nil {
		panic(err)
	}
	return p
}

func parseNetns(v string, interfaces func() ([]net.Interface, error)) (netip.Prefix, error) {
	if v == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("lab: %s=%q: %w", NetnsEnv, v, err)
	}
	if !p.Addr().Is4() || p.Bits() < 8 || p.Bits() > 16 || p.Addr().IsLoopback() {
		return netip.Prefix{}, fmt.Errorf("lab: %s=%q: want an IPv4 prefix outside 127.0.0.0/8, /8 to /16", NetnsEnv, v)
	}
	ifs, err := interfaces()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("lab: %s: list interfaces: %w", NetnsEnv, err)
	}
	if len(ifs) != 1 || ifs[0].Flags&net.FlagLoopback == 0 {
		names := make([]string, len(ifs))
		for i, f := range ifs {
			names[i] = f.Name
		}
		return netip.Prefix{}, fmt.Errorf("lab: %s=%s outside a network namespace of its own (interfaces %v): refusing addresses that could leave this machine", NetnsEnv, v, names)
	}
	return p.Masked(), nil
}

// labAddr reports whether ip may be a lab peer's address: loopback, or in
// the namespace's prefix.
func labAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsLoopback() || (netnsPrefix.IsValid() && netnsPrefix.Contains(ip))
}

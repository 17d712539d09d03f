package lab

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
)

// Loopback is the address of the lab's shared services: the tracker, and
// the RPC and WebUI ports of the programs.
var Loopback = netip.MustParseAddr("127.0.0.1")

// addrBase holds the second and third octet of this process's addresses:
// the second from the PID, the third random, so that test binaries running
// in parallel hand out different addresses.
var addrBase = [2]byte{
	byte(1 + os.Getpid()%254),
	byte(rand.IntN(256)),
}

var addrSeq atomic.Uint32

// NextAddr returns a loopback address no other call in this process has
// returned: 127.A.B.2, 127.A.B.3, … (A from the PID, B random at start),
// moving on to the next B after .254. Give every peer its own address:
// Transmission and libtorrent key peers by IP. In a network namespace of
// the run's own ([NetnsEnv]) it returns P.Q.0.2, P.Q.0.3, … of its prefix.
func NextAddr() netip.Addr {
	n := addrSeq.Add(1) - 1
	fourth := byte(2 + n%253)
	if netnsPrefix.IsValid() { // the namespace is this run's alone
		a := netnsPrefix.Addr().As4()
		return netip.AddrFrom4([4]byte{a[0], a[1], byte(n / 253), fourth})
	}
	third := byte(uint32(addrBase[1]) + n/253)
	return netip.AddrFrom4([4]byte{127, addrBase[0], third, fourth})
}

// FreePort returns a port that is free for both TCP and UDP on ip (BitTorrent
// programs bind both on their peer port).
func FreePort(t testing.TB, ip netip.Addr) int {
	t.Helper()
	var lastErr error
	for range 50 {
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			t.Fatalf("lab: free port on %s: %v", ip, err)
		}
		port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, port)))
		ln.Close()
		if err != nil {
			lastErr = err
			continue
		}
		pc.Close()
		return int(port)
	}
	t.Fatalf("lab: no port free for both TCP and UDP on %s: %v", ip, lastErr)
	return 0
}

// FreeUDPPort returns a free UDP port on ip.
func FreeUDPPort(t testing.TB, ip netip.Addr) int {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatalf("lab: free UDP port on %s: %v", ip, err)
	}
	defer pc.Close()
	return int(pc.LocalAddr().(*net.UDPAddr).AddrPort().Port())
}

// errNotLoopback is wrapped by checkLoopback.
var errNotLoopback = errors.New("not a loopback address")

// checkLoopback returns an error unless ip is in 127.0.0.0/8.
func checkLoopback(ip netip.Addr) error {
	if !ip.Is4() || !labAddr(ip) {
		return fmt.Errorf("%s: %w; use NextAddr", ip, errNotLoopback)
	}
	return nil
}

// peerAddr fills in a program's peer address (a fresh loopback address
// unless set) and port (a free one unless set), failing the test for an
// address outside loopback.
func peerAddr(t testing.TB, program string, addr *netip.Addr, port *int) {
	t.Helper()
	if !addr.IsValid() {
		*addr = NextAddr()
	}
	if err := checkLoopback(*addr); err != nil {
		t.Fatalf("lab: %s: %v", program, err)
	}
	if *port == 0 {
		*port = FreePort(t, *addr)
	}
}

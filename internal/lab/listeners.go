package lab

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A Listener is a socket on which a process accepts traffic: a listening
// TCP socket or an unconnected bound UDP socket.
type Listener struct {
	Network string // tcp, tcp6, udp or udp6
	Addr    netip.AddrPort
}

func (l Listener) String() string { return l.Network + " " + l.Addr.String() }

// Listeners returns the listening sockets of the process pid, read from
// /proc/<pid>/fd and /proc/<pid>/net.
func Listeners(pid int) ([]Listener, error) {
	inodes, err := socketInodes(pid)
	if err != nil {
		return nil, err
	}
	var out []Listener
	for _, network := range []string{"tcp", "tcp6", "udp", "udp6"} {
		path := fmt.Sprintf("/proc/%d/net/%s", pid, network)
		ls, err := parseProcNet(path, network, inodes)
		if err != nil {
			return nil, err
		}
		out = append(out, ls...)
	}
	return out, nil
}

// socketInodes returns the inodes of the sockets open in process pid.
func socketInodes(pid int) (map[string]bool, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("sockets of %d: %w", pid, err)
	}
	inodes := map[string]bool{}
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if rest, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(rest, "]")] = true
		}
	}
	return inodes, nil
}

// parseProcNet reads one /proc/net table and returns the listening
// sockets among inodes.
func parseProcNet(path, network string, inodes map[string]bool) ([]Listener, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("listeners: %w", err)
	}
	defer f.Close()
	var out []Listener
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || !inodes[fields[9]] {
			continue
		}
		local, remote, state := fields[1], fields[2], fields[3]
		if strings.HasPrefix(network, "tcp") && state != "0A" { // TCP_LISTEN
			continue
		}
		if strings.HasPrefix(network, "udp") {
			rem, err := parseProcAddr(remote)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if rem.Port() != 0 { // connected: not a listener
				continue
			}
		}
		ap, err := parseProcAddr(local)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, Listener{Network: network, Addr: ap})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// parseProcAddr parses "0100007F:1F90" (IPv4) or the 32-digit IPv6 form.
// The address is written as 32-bit words in host (little-endian) order.
func parseProcAddr(s string) (netip.AddrPort, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad socket address %q", s)
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q: %w", s, err)
	}
	raw, err := hex.DecodeString(hexIP)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad IP in %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		binary.BigEndian.PutUint32(raw[i:], binary.LittleEndian.Uint32(raw[i:]))
	}
	ip, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
}

// checkListeners fails t if p listens on anything but loopback.
func checkListeners(t testing.TB, p *Process) {
	t.Helper()
	ls, err := Listeners(p.PID())
	if err != nil {
		if p.running() {
			t.Errorf("lab: %s: %v", p.name, err)
		}
		return
	}
	for _, l := range ls {
		if !labAddr(l.Addr.Addr()) {
			t.Errorf("lab: %s listens on a non-loopback address: %s (all: %v)", p.name, l, ls)
		}
	}
}

//go:build !linux

package tracker

import "net"

// listenUDP binds one socket to addr: without SO_REUSEPORT's spreading,
// more would not help.
func listenUDP(addr string, _ int) ([]*net.UDPConn, error) {
	pc, err := net.ListenPacket(udpNetwork(addr), addr)
	if err != nil {
		return nil, err
	}
	return []*net.UDPConn{pc.(*net.UDPConn)}, nil
}

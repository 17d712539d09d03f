package tracker

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenUDP binds n sockets to addr with SO_REUSEPORT, so that the kernel
// spreads clients over them (by address hash) and each is read by its own
// goroutine. A port of 0 is resolved by the first socket. Only sockets of
// this process's user can join such a group.
func listenUDP(addr string, n int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("SO_REUSEPORT: %w", serr)
		}
		return nil
	}}
	network := udpNetwork(addr)
	var conns []*net.UDPConn
	for i := range max(n, 1) {
		pc, err := lc.ListenPacket(context.Background(), network, addr)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		c := pc.(*net.UDPConn)
		if err := c.SetReadBuffer(4 << 20); err != nil {
			c.Close()
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		conns = append(conns, c)
		if i == 0 {
			addr = c.LocalAddr().String() // the port chosen for port 0
		}
	}
	return conns, nil
}

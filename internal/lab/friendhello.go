package lab

import (
	"context"
	"fmt"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/btslave/btslave/friends"
)

// SayFriendHello plays another owner's repeater met in a swarm: it
// connects to the btslave peer at addr in the swarm ih (which that peer
// must hold), offers bts_friends in its extended handshake and sends the
// swarm hello of id, signed for this connection's peer IDs, naming
// friendsAddr as its direct channel. With [friends] accept = "ask" the
// peer then lists id as a pending request (poll for it: the hello is
// taken after this returns, or not at all). It waits for the peer's own
// hello before it hangs up.
func SayFriendHello(ctx context.Context, addr string, ih [20]byte, id friends.Identity, friendsAddr string) error {
	p, err := DialPeer(ctx, addr, ih, false)
	if err != nil {
		return err
	}
	defer p.Close()
	const ourExt = 7 // our id for bts_friends
	if err := p.Send(ExtMsg(0, map[string]any{"m": map[string]int{friends.ExtensionName: ourExt}, "v": "lab friend"})); err != nil {
		return err
	}
	ours := Handshake(ih, false)[48:68]
	theirs := p.Theirs[48:68]
	deadline := time.Now().Add(10 * time.Second)
	sent := false
	for time.Now().Before(deadline) {
		mid, payload, err := p.ReadMsg(time.Until(deadline))
		if err != nil {
			if sent {
				return nil // they hung up after our hello
			}
			return fmt.Errorf("friend hello to %s: %w", addr, err)
		}
		if mid != 20 || len(payload) == 0 {
			continue
		}
		switch {
		case payload[0] == 0 && !sent:
			var hs struct {
				M map[string]int `bencode:"m"`
			}
			if err := bencode.Unmarshal(payload[1:], &hs); err != nil {
				return fmt.Errorf("friend hello: their extended handshake: %w", err)
			}
			theirExt := hs.M[friends.ExtensionName]
			if theirExt <= 0 || theirExt > 255 {
				return fmt.Errorf("friend hello: %s does not offer %s (m = %v)", addr, friends.ExtensionName, hs.M)
			}
			hello, err := friends.NewSwarmHello(id, ih[:], ours, theirs, friendsAddr, time.Now())
			if err != nil {
				return err
			}
			if err := p.Send(Msg(20, append([]byte{byte(theirExt)}, hello...)...)); err != nil {
				return err
			}
			sent = true
		case payload[0] == ourExt && sent:
			// Their hello. Read on a little before hanging up, so that
			// the close is a FIN after our hello, not a reset that could
			// discard it unread.
			p.Drain(300 * time.Millisecond)
			return nil
		}
	}
	if sent {
		return nil
	}
	return fmt.Errorf("friend hello: no extended handshake from %s in time", addr)
}

package wire

import (
	"net"

	"github.com/anacrolix/torrent/metainfo"
)

// The offer order (issue #9): which peer hears of a fresh piece first.
// anacrolix sends a HAVE for each piece it completes to every peer at
// once, so every leecher that lacks the piece asks the repeater for it at
// the same moment, each gets it at a fraction of the repeater's upload, and
// all of them hold it at about the same time: nobody has anything new to
// trade with the others meanwhile. While a connection withholds, the
// library's HAVEs to it are kept (the piece is marked announced, as the
// library will not say it again, and withheld), and the repeater shows
// each withheld piece when its policy says (Layer.Offer). Nothing false is
// said: a withheld piece is one the peer is not told of yet, as a BEP 16
// super-seed does; the connection's initial BITFIELD is never changed.

// Withheld reports how many pieces are withheld from the peer now.
func (c *Conn) Withheld() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.withheld.Count()
}

// withheldList returns the withheld pieces the peer still lacks, dropping
// those it got meanwhile (they need no HAVE).
func (c *Conn) withheldList() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.st
	var out []int
	for i, w := range s.withheld.w {
		for j := 0; w != 0 && j < 64; j++ {
			if w&(1<<j) == 0 {
				continue
			}
			w &^= 1 << j
			p := i*64 + j
			if s.haveAll || s.have.Has(p) {
				s.withheld.Clear(p)
				continue
			}
			out = append(out, p)
		}
	}
	return out
}

// onWithheld records a HAVE of the library's kept from the peer.
func (c *Conn) onWithheld(piece int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if piece >= c.pieceLimit() {
		return
	}
	c.st.announced.Set(piece)
	if !c.st.advertised.Has(piece) {
		c.st.withheld.Set(piece)
		c.st.havesWithheld++
	}
}

// show tells the peer of the withheld pieces among pieces.
func (c *Conn) show(pieces []int) {
	var msgs []byte
	c.mu.Lock()
	s := &c.st
	for _, p := range pieces {
		if !s.withheld.Has(p) {
			continue
		}
		s.withheld.Clear(p)
		if s.advertised.Has(p) || s.haveAll || s.have.Has(p) {
			continue
		}
		s.advW().Set(p)
		s.havesSent++
		msgs = append(msgs, msgHaveBytes(uint32(p))...)
	}
	c.mu.Unlock()
	if msgs != nil {
		c.layer.stats.haves.Add(int64(len(msgs) / 9))
		c.inject(msgs)
	}
}

// OfferDecision is what the repeater's policy decides for one connection:
// whether the library's HAVEs to it are withheld from now on, and which
// withheld pieces it is shown now. Not withholding shows it every
// withheld piece.
type OfferDecision struct {
	Withhold bool
	Show     []int
	// KeepInterest lets the layer hold the peer's request for the last
	// block it could ask us for (keepinterest.go): set for the swarm's
	// leechers, never for the master, whose download is the owner's.
	KeepInterest bool
}

// Offer applies the repeater's offer order to each connection of the
// torrent: decide gets the peer's address (the key of its snapshot in
// Peers) and the pieces withheld from it that it lacks.
func (l *Layer) Offer(ih metainfo.Hash, decide func(remote net.Addr, withheld []int) OfferDecision) {
	for _, c := range l.connsOf(ih) {
		withheld := c.withheldList()
		d := decide(c.RemoteAddr(), withheld)
		c.withhold.Store(d.Withhold)
		c.keepInterest.Store(d.KeepInterest)
		if !d.Withhold {
			d.Show = withheld
		}
		if len(d.Show) > 0 {
			c.show(d.Show)
		}
	}
}

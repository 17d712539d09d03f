package tracker

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
)

// Peer flags, kept in every peer record and carried in sync packets (the
// bit values are opentracker's livesync flags, plus flagPartial).
const (
	flagSeed      = 0x80 // left == 0
	flagCompleted = 0x40 // announced completed once: counted in downloaded
	flagStopped   = 0x20 // sync only: the peer left
	flagPartial   = 0x08 // BEP 21 partial seed: left > 0, event=paused
)

// bucketMax is the most peers one bucket of a peer list holds on average
// before the list doubles its buckets, so that adding a peer to a huge
// swarm moves at most a few KiB.
const bucketMax = 2048

// peerRec is a peer record: an address that orders the records, the flags
// and the epoch of its last announce. peer4 and peer6 implement it.
type peerRec[P any] interface {
	cmp(P) int
	flags() uint8
	epoch() uint8
	with(flags, epoch uint8) P
	hash() uint32
	appendCompact([]byte) []byte
	addrPort() netip.AddrPort
}

// peer4 is an IPv4 peer in one word: address (32 bits), port (16), flags
// (8) and epoch (8), so that ordering the words orders the addresses.
type peer4 uint64

func newPeer4(a netip.AddrPort, flags, epoch uint8) peer4 {
	ip := a.Addr().Unmap().As4()
	return peer4(binary.BigEndian.Uint32(ip[:]))<<32 | peer4(a.Port())<<16 | peer4(flags)<<8 | peer4(epoch)
}

func (p peer4) cmp(q peer4) int { return int(int64(p>>16) - int64(q>>16)) }
func (p peer4) flags() uint8    { return uint8(p >> 8) }
func (p peer4) epoch() uint8    { return uint8(p) }
func (p peer4) with(flags, epoch uint8) peer4 {
	return p&^0xffff | peer4(flags)<<8 | peer4(epoch)
}
func (p peer4) hash() uint32 { return uint32((uint64(p>>16) * 0x9E3779B97F4A7C15) >> 32) }
func (p peer4) appendCompact(b []byte) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(p))[:len(b)+6]
}
func (p peer4) addrPort() netip.AddrPort {
	var ip [4]byte
	binary.BigEndian.PutUint32(ip[:], uint32(p>>32))
	return netip.AddrPortFrom(netip.AddrFrom4(ip), uint16(p>>16))
}

// peer6 is an IPv6 peer: address, port (big-endian), flags and epoch.
type peer6 struct {
	addr [18]byte
	f, e uint8
}

func newPeer6(a netip.AddrPort, flags, epoch uint8) peer6 {
	p := peer6{f: flags, e: epoch}
	ip := a.Addr().As16()
	copy(p.addr[:], ip[:])
	binary.BigEndian.PutUint16(p.addr[16:], a.Port())
	return p
}

func (p peer6) cmp(q peer6) int { return bytes.Compare(p.addr[:], q.addr[:]) }
func (p peer6) flags() uint8    { return p.f }
func (p peer6) epoch() uint8    { return p.e }
func (p peer6) with(flags, epoch uint8) peer6 {
	p.f, p.e = flags, epoch
	return p
}
func (p peer6) hash() uint32 {
	h := binary.BigEndian.Uint64(p.addr[0:]) ^ binary.BigEndian.Uint64(p.addr[8:])*31 ^ uint64(binary.BigEndian.Uint16(p.addr[16:]))
	return uint32((h * 0x9E3779B97F4A7C15) >> 32)
}
func (p peer6) appendCompact(b []byte) []byte { return append(b, p.addr[:]...) }
func (p peer6) addrPort() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(p.addr[:16])), binary.BigEndian.Uint16(p.addr[16:]))
}

// peerList is one set of peers of a torrent (say, its IPv4 downloaders):
// sorted slices in a power-of-two number of buckets chosen by address
// hash. A list of n peers costs about n·size(P)·4/3 bytes; finding a peer
// is a binary search in one bucket; adding or removing one moves at most
// a bucket. Peers are picked for replies by position, as if the buckets
// were one slice.
type peerList[P peerRec[P]] struct {
	b [][]P
	n int
}

// len is the number of peers.
func (l *peerList[P]) len() int { return l.n }

// bucket returns the index of the bucket p belongs in.
func (l *peerList[P]) bucket(p P) int {
	if len(l.b) == 1 {
		return 0
	}
	return int(p.hash() & uint32(len(l.b)-1))
}

// find returns p's bucket and position in it, and whether it is there
// (else the position it would go to).
func (l *peerList[P]) find(p P) (bi, i int, ok bool) {
	if l.n == 0 {
		return 0, 0, false
	}
	bi = l.bucket(p)
	i, ok = slices.BinarySearchFunc(l.b[bi], p, P.cmp)
	return bi, i, ok
}

// get returns the record at bucket bi, position i.
func (l *peerList[P]) get(bi, i int) P { return l.b[bi][i] }

// set replaces the record at bucket bi, position i, whose address must
// stay the same.
func (l *peerList[P]) set(bi, i int, p P) { l.b[bi][i] = p }

// insert adds p, which find said is missing.
func (l *peerList[P]) insert(p P) {
	if l.b == nil {
		l.b = make([][]P, 1)
	}
	bi := l.bucket(p)
	i, _ := slices.BinarySearchFunc(l.b[bi], p, P.cmp)
	l.b[bi] = slices.Insert(l.b[bi], i, p)
	l.n++
	if l.n > bucketMax*len(l.b) {
		l.split()
	}
}

// removeAt removes the record at bucket bi, position i.
func (l *peerList[P]) removeAt(bi, i int) {
	b := l.b[bi]
	copy(b[i:], b[i+1:])
	var zero P
	b[len(b)-1] = zero
	l.b[bi] = b[:len(b)-1]
	l.n--
	if l.n == 0 {
		l.b = nil
	} else if cap(l.b[bi]) > 32 && len(l.b[bi]) < cap(l.b[bi])/4 {
		l.b[bi] = slices.Clip(slices.Clone(l.b[bi]))
	}
}

// split doubles the buckets: each one splits in two by one more bit of
// the hash, keeping its order.
func (l *peerList[P]) split() {
	old := l.b
	nb := len(old) * 2
	l.b = make([][]P, nb)
	for bi, b := range old {
		var lo, hi []P
		for _, p := range b {
			if p.hash()&uint32(nb-1) == uint32(bi) {
				lo = append(lo, p)
			} else {
				hi = append(hi, p)
			}
		}
		l.b[bi], l.b[bi+len(old)] = lo, hi
	}
}

// sweep removes the records for which drop returns true and returns how
// many it removed.
func (l *peerList[P]) sweep(drop func(P) bool) int {
	removed := 0
	for bi, b := range l.b {
		kept := b[:0]
		for _, p := range b {
			if drop(p) {
				removed++
				continue
			}
			kept = append(kept, p)
		}
		clear(b[len(kept):])
		l.b[bi] = kept
	}
	l.n -= removed
	if l.n == 0 {
		l.b = nil
	}
	return removed
}

// each calls f for every record, in no particular order.
func (l *peerList[P]) each(f func(P)) {
	for _, b := range l.b {
		for _, p := range b {
			f(p)
		}
	}
}

// picker walks a list by increasing logical position.
type picker[P peerRec[P]] struct {
	l        *peerList[P]
	bi, base int // current bucket and the logical position of its start
}

// at returns the record at logical position pos, which must not be less
// than the last one asked for.
func (w *picker[P]) at(pos int) P {
	for pos-w.base >= len(w.l.b[w.bi]) {
		w.base += len(w.l.b[w.bi])
		w.bi++
	}
	return w.l.b[w.bi][pos-w.base]
}

// pos returns the logical position of p in the list, or -1.
func (l *peerList[P]) pos(p P) int {
	bi, i, ok := l.find(p)
	if !ok {
		return -1
	}
	for _, b := range l.b[:bi] {
		i += len(b)
	}
	return i
}

// pick appends up to want compact addresses from the concatenation of a
// and b (b may be nil) to dst, leaving out self, and returns dst and the
// count appended. With more peers than wanted it takes every k-th one
// from a random start, so replies differ and spread over the swarm.
func pick[P peerRec[P]](dst []byte, a, b *peerList[P], want int, self P, r uint64) ([]byte, int) {
	n := a.len()
	if b != nil {
		n += b.len()
	}
	selfPos := a.pos(self)
	if selfPos < 0 && b != nil {
		if p := b.pos(self); p >= 0 {
			selfPos = a.len() + p
		}
	}
	if selfPos >= 0 {
		n--
	}
	if want <= 0 || n <= 0 {
		return dst, 0
	}
	wa := picker[P]{l: a}
	var wb picker[P]
	if b != nil {
		wb.l = b
	}
	get := func(pos int) P {
		if selfPos >= 0 && pos >= selfPos {
			pos++ // self is not in the index space
		}
		if pos < a.len() {
			return wa.at(pos)
		}
		return wb.at(pos - a.len())
	}
	if want >= n {
		for pos := range n {
			dst = get(pos).appendCompact(dst)
		}
		return dst, n
	}
	// n > want: positions off + floor(k·n/want), k < want, with off
	// random in [0, n/want), each within [0, n) and increasing.
	off := int(r % uint64(n/want))
	for k := range want {
		dst = get(off + k*n/want).appendCompact(dst)
	}
	return dst, want
}

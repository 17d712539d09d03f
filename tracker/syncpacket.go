package tracker

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/anacrolix/torrent/metainfo"
)

// Sync packet types: opentracker's livesync numbers (ot_livesync.h) and
// this tracker's additions; docs/tracker-sync.md has the layouts.
const (
	syncLive    uint32 = 0  // SYNC_LIVE: peers, IPv4
	syncBeacon  uint32 = 1  // SYNC_SCRAPE_BEACON: our torrent count
	syncInquire uint32 = 2  // SYNC_SCRAPE_INQUIRE: ask one instance to tell
	syncTell    uint32 = 3  // SYNC_SCRAPE_TELL: downloaded counts
	syncLive6   uint32 = 16 // ours: SYNC_LIVE with IPv6 addresses
	// syncAuth, set in the type field, marks an authenticated packet: a
	// sequence number and an HMAC follow the payload.
	syncAuth uint32 = 1 << 31
)

// Sizes of the parts of a sync packet.
const (
	syncHeaderLen  = 8  // tracker id, type
	syncLiveLen    = 28 // info_hash, IPv4, port, flags, reserved
	syncLive6Len   = 40 // info_hash, IPv6, port, flags, reserved
	syncTellLen    = 32 // info_hash, base offset (minutes), downloaded
	syncBeaconLen  = 8  // torrent count
	syncInquireLen = 4  // tracker id
	syncSeqLen     = 8
	syncMACLen     = 16 // HMAC-SHA256, truncated
	syncTrailerLen = syncSeqLen + syncMACLen
	// syncMaxPacket is the largest packet sent: opentracker's peer
	// buffer, which fits an Ethernet frame.
	syncMaxPacket = 1480
)

// Errors from parseSyncPacket; each is counted and the packet dropped.
var (
	errSyncShort   = errors.New("sync: packet too short")
	errSyncLength  = errors.New("sync: payload length does not fit the packet type")
	errSyncType    = errors.New("sync: unknown packet type")
	errSyncMAC     = errors.New("sync: bad HMAC")
	errSyncNoAuth  = errors.New("sync: unauthenticated packet, but a sync key is set")
	errSyncNoKey   = errors.New("sync: authenticated packet, but no sync key is set")
	errSyncReplay  = errors.New("sync: replayed or stale sequence number")
	errSyncUnknown = errors.New("sync: sender not among the sync peers")
)

// syncPacket is a decoded sync packet.
type syncPacket struct {
	sender uint32
	typ    uint32 // without syncAuth
	auth   bool
	seq    uint64 // authenticated packets only
	body   []byte // the payload
}

// parseSyncPacket decodes pkt and, when key is set, checks its HMAC:
// with a key only authenticated packets are accepted, without one only
// plain ones. The payload must be a whole number of entries of its type.
// It never panics.
func parseSyncPacket(pkt, key []byte, p *syncPacket) error {
	if len(pkt) < syncHeaderLen {
		return errSyncShort
	}
	be := binary.BigEndian
	p.sender = be.Uint32(pkt)
	typ := be.Uint32(pkt[4:])
	p.auth = typ&syncAuth != 0
	p.typ = typ &^ syncAuth
	switch {
	case p.auth && len(key) == 0:
		return errSyncNoKey
	case !p.auth && len(key) > 0:
		return errSyncNoAuth
	case p.auth:
		if len(pkt) < syncHeaderLen+syncTrailerLen {
			return errSyncShort
		}
		end := len(pkt) - syncMACLen
		if !hmac.Equal(syncMAC(key, pkt[:end]), pkt[end:]) {
			return errSyncMAC
		}
		p.seq = be.Uint64(pkt[end-syncSeqLen:])
		p.body = pkt[syncHeaderLen : end-syncSeqLen]
	default:
		p.seq = 0
		p.body = pkt[syncHeaderLen:]
	}
	n := len(p.body)
	switch p.typ {
	case syncLive:
		if n%syncLiveLen != 0 {
			return errSyncLength
		}
	case syncLive6:
		if n%syncLive6Len != 0 {
			return errSyncLength
		}
	case syncTell:
		if n%syncTellLen != 0 {
			return errSyncLength
		}
	case syncBeacon:
		if n != syncBeaconLen {
			return errSyncLength
		}
	case syncInquire:
		if n != syncInquireLen {
			return errSyncLength
		}
	default:
		return errSyncType
	}
	return nil
}

// syncMAC is the truncated HMAC-SHA256 of b under key.
func syncMAC(key, b []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return m.Sum(nil)[:syncMACLen]
}

// syncLiveEntry is one peer of a SYNC_LIVE or SYNC_LIVE6 packet.
type syncLiveEntry struct {
	ih    metainfo.Hash
	addr  netip.AddrPort
	flags uint8
}

// liveEntries calls f for each entry of a SYNC_LIVE (ip6 false) or
// SYNC_LIVE6 payload.
func liveEntries(body []byte, ip6 bool, f func(syncLiveEntry)) {
	size, ipLen := syncLiveLen, 4
	if ip6 {
		size, ipLen = syncLive6Len, 16
	}
	for ; len(body) >= size; body = body[size:] {
		e := syncLiveEntry{ih: metainfo.Hash(body[:20])}
		var ip netip.Addr
		if ip6 {
			ip = netip.AddrFrom16([16]byte(body[20:36])).Unmap()
		} else {
			ip = netip.AddrFrom4([4]byte(body[20:24]))
		}
		e.addr = netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[20+ipLen:]))
		e.flags = body[22+ipLen]
		f(e)
	}
}

// tellEntries calls f for each entry of a SYNC_SCRAPE_TELL payload: the
// info-hash, minutes since its last announce, its downloaded count.
func tellEntries(body []byte, f func(ih metainfo.Hash, offset uint32, downloaded uint64)) {
	for ; len(body) >= syncTellLen; body = body[syncTellLen:] {
		f(metainfo.Hash(body[:20]), binary.BigEndian.Uint32(body[20:]), binary.BigEndian.Uint64(body[24:]))
	}
}

// appendSyncHeader starts a packet.
func appendSyncHeader(dst []byte, sender, typ uint32, auth bool) []byte {
	if auth {
		typ |= syncAuth
	}
	dst = binary.BigEndian.AppendUint32(dst, sender)
	return binary.BigEndian.AppendUint32(dst, typ)
}

// appendLiveEntry appends one peer to a SYNC_LIVE (IPv4 address) or
// SYNC_LIVE6 packet.
func appendLiveEntry(dst []byte, ih metainfo.Hash, addr netip.AddrPort, flags uint8) []byte {
	dst = append(dst, ih[:]...)
	if ip := addr.Addr(); ip.Is4() {
		a := ip.As4()
		dst = append(dst, a[:]...)
	} else {
		a := ip.As16()
		dst = append(dst, a[:]...)
	}
	dst = binary.BigEndian.AppendUint16(dst, addr.Port())
	return append(dst, flags, 0)
}

// appendTellEntry appends one torrent to a SYNC_SCRAPE_TELL packet.
func appendTellEntry(dst []byte, ih metainfo.Hash, offset uint32, downloaded uint64) []byte {
	dst = append(dst, ih[:]...)
	dst = binary.BigEndian.AppendUint32(dst, offset)
	return binary.BigEndian.AppendUint64(dst, downloaded)
}

// sealSyncPacket appends the sequence number and HMAC of an
// authenticated packet.
func sealSyncPacket(pkt, key []byte, seq uint64) []byte {
	pkt = binary.BigEndian.AppendUint64(pkt, seq)
	return append(pkt, syncMAC(key, pkt)...)
}

// replayWindow accepts each sequence number of one sender once, within
// the 64 numbers below the highest seen (as IPsec does); older ones are
// refused.
type replayWindow struct {
	top  uint64
	bits uint64 // bit i: top-i was seen
}

func (w *replayWindow) accept(seq uint64) bool {
	if seq > w.top {
		if d := seq - w.top; d >= 64 {
			w.bits = 0
		} else {
			w.bits <<= d
		}
		w.top = seq
		w.bits |= 1
		return true
	}
	d := w.top - seq
	if d >= 64 || w.bits&(1<<d) != 0 {
		return false
	}
	w.bits |= 1 << d
	return true
}

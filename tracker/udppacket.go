package tracker

import (
	"encoding/binary"
	"errors"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/tracker/udp"
)

// BEP 15 sizes and limits.
const (
	udpHeaderLen   = 16 // connection id, action, transaction id
	udpAnnounceLen = udpHeaderLen + 82
	// udpMaxScrape is the most info-hashes answered per scrape packet,
	// as many as fit in a 1500-byte datagram with its headers.
	udpMaxScrape = 74
	// udpMaxPeers4 and udpMaxPeers6 keep an announce reply within 1500
	// bytes with IP and UDP headers.
	udpMaxPeers4 = 200
	udpMaxPeers6 = 75
)

// udpEventPaused is the event libtorrent sends over UDP for a partial
// seed (its paused event, number 4). BEP 15 defines 0–3 only; this
// tracker takes 4 as BEP 21's paused, and any other unknown value as
// none.
const udpEventPaused = 4

// Errors from parseUDPRequest.
var (
	errShortPacket = errors.New("udp: packet too short")
	errBadMagic    = errors.New("udp: connect without the protocol id")
	errBadAction   = errors.New("udp: unknown action")
)

// udpRequest is a decoded BEP 15 request.
type udpRequest struct {
	connID uint64
	action udp.Action
	tid    int32

	// announce
	ih                         metainfo.Hash
	downloaded, left, uploaded int64
	event                      event
	key                        uint32
	numWant                    int32
	port                       uint16

	// scrape: the packed info-hashes, 20 bytes each (at most
	// udpMaxScrape; more are ignored)
	hashes []byte
}

// parseUDPRequest decodes pkt into r. The announce's IP address field is
// ignored (the source address counts), and so are BEP 41 options and a
// partial trailing info-hash in a scrape. It never panics.
func parseUDPRequest(pkt []byte, r *udpRequest) error {
	if len(pkt) < udpHeaderLen {
		return errShortPacket
	}
	be := binary.BigEndian
	r.connID = be.Uint64(pkt)
	r.action = udp.Action(be.Uint32(pkt[8:]))
	r.tid = int32(be.Uint32(pkt[12:]))
	switch r.action {
	case udp.ActionConnect:
		if r.connID != udp.ConnectRequestConnectionId {
			return errBadMagic
		}
	case udp.ActionAnnounce:
		if len(pkt) < udpAnnounceLen {
			return errShortPacket
		}
		b := pkt[udpHeaderLen:]
		copy(r.ih[:], b[0:20])
		// b[20:40] is the peer id, which the tracker does not keep.
		r.downloaded = int64(be.Uint64(b[40:]))
		r.left = int64(be.Uint64(b[48:]))
		r.uploaded = int64(be.Uint64(b[56:]))
		switch ev := be.Uint32(b[64:]); ev {
		case 1:
			r.event = eventCompleted
		case 2:
			r.event = eventStarted
		case 3:
			r.event = eventStopped
		case udpEventPaused:
			r.event = eventPaused
		default:
			r.event = eventNone
		}
		// b[68:72] is the IP address field.
		r.key = be.Uint32(b[72:])
		r.numWant = int32(be.Uint32(b[76:]))
		r.port = be.Uint16(b[80:])
	case udp.ActionScrape:
		n := min((len(pkt)-udpHeaderLen)/20, udpMaxScrape)
		r.hashes = pkt[udpHeaderLen : udpHeaderLen+20*n]
	default:
		return errBadAction
	}
	return nil
}

// appendUDPHeader appends a reply's action and transaction id.
func appendUDPHeader(dst []byte, action udp.Action, tid int32) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(action))
	return binary.BigEndian.AppendUint32(dst, uint32(tid))
}

// appendConnectReply appends a connect reply.
func appendConnectReply(dst []byte, tid int32, connID uint64) []byte {
	return binary.BigEndian.AppendUint64(appendUDPHeader(dst, udp.ActionConnect, tid), connID)
}

// appendAnnounceHead appends an announce reply up to its peers.
func appendAnnounceHead(dst []byte, tid int32, interval int32, c counts) []byte {
	dst = appendUDPHeader(dst, udp.ActionAnnounce, tid)
	dst = binary.BigEndian.AppendUint32(dst, uint32(interval))
	dst = binary.BigEndian.AppendUint32(dst, uint32(clamp32(c.incomplete())))
	return binary.BigEndian.AppendUint32(dst, uint32(clamp32(c.seeds)))
}

// appendScrapeRow appends one torrent's row of a scrape reply: seeders,
// completed, leechers.
func appendScrapeRow(dst []byte, c counts) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(clamp32(c.seeds)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(clamp32(int64(min(c.downloaded, 1<<31-1)))))
	return binary.BigEndian.AppendUint32(dst, uint32(clamp32(c.incomplete())))
}

// appendUDPError appends an error reply.
func appendUDPError(dst []byte, tid int32, msg string) []byte {
	return append(appendUDPHeader(dst, udp.ActionError, tid), msg...)
}

func clamp32(v int64) int32 { return int32(min(max(v, 0), 1<<31-1)) }

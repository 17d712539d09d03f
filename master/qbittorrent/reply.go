package qbittorrent

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/btslave/btslave/master"
)

// Version is a WebAPI version, e.g. 2.8.19 or 2.11.2.
type Version [3]int

// ParseVersion parses "2.8.19".
func ParseVersion(s string) (Version, error) {
	var v Version
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 || len(parts) > 3 {
		return v, fmt.Errorf("version %q is not N.N[.N]", trunc([]byte(s)))
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 1e6 {
			return v, fmt.Errorf("version %q is not N.N[.N]", trunc([]byte(s)))
		}
		v[i] = n
	}
	return v, nil
}

// Less orders versions.
func (v Version) Less(w Version) bool {
	for i := range v {
		if v[i] != w[i] {
			return v[i] < w[i]
		}
	}
	return false
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2]) }

// stopped are the states of a torrent that is not downloading now: the
// paused* names of WebAPI < 2.11, the stopped* names of 2.11 (qBittorrent
// 5), queued and errors.
var stopped = map[string]bool{
	"pausedDL": true, "stoppedDL": true, "pausedUP": true, "stoppedUP": true,
	"queuedDL": true, "error": true, "missingFiles": true, "moving": true,
}

// DecodeTorrents decodes torrents/info and keeps those lacking data.
func DecodeTorrents(body []byte) ([]master.Torrent, error) {
	var list []struct {
		Hash       string  `json:"hash"`
		Name       string  `json:"name"`
		Category   string  `json:"category"`
		Tags       string  `json:"tags"`
		Progress   float64 `json:"progress"`
		State      string  `json:"state"`
		Magnet     string  `json:"magnet_uri"`
		AmountLeft *int64  `json:"amount_left"`
		// NumComplete and NumIncomplete are the swarm as the trackers
		// scraped it (-1 unknown in some versions).
		NumComplete   *int `json:"num_complete"`
		NumIncomplete *int `json:"num_incomplete"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, master.Garbage("qbittorrent torrents/info", err)
	}
	out := make([]master.Torrent, 0, len(list))
	for i, t := range list {
		h := strings.ToLower(t.Hash)
		if !isHash(h) {
			return nil, master.Garbage("qbittorrent torrents/info", fmt.Errorf("torrent %d: hash %q is not 40 hex digits", i, trunc([]byte(t.Hash))))
		}
		if t.AmountLeft != nil && *t.AmountLeft == 0 || t.Progress >= 1 {
			continue
		}
		cat := t.Category
		if t.Tags != "" {
			cat = strings.Trim(cat+","+t.Tags, ",")
		}
		mag := t.Magnet
		if !strings.HasPrefix(mag, "magnet:") {
			mag = master.Magnet(h, t.Name)
		}
		mt := master.Torrent{InfoHash: h, Name: t.Name, Magnet: mag, Progress: t.Progress,
			Category: cat, Stopped: stopped[t.State], Seeders: -1, Leechers: -1}
		if t.NumComplete != nil {
			mt.Seeders = *t.NumComplete
		}
		if t.NumIncomplete != nil {
			mt.Leechers = *t.NumIncomplete
		}
		out = append(out, mt)
	}
	return out, nil
}

// DecodeReceived decodes torrents/info (for one hash) and returns that
// torrent's downloaded bytes.
func DecodeReceived(body []byte, infoHash string) (int64, error) {
	var list []struct {
		Hash       string `json:"hash"`
		Downloaded *int64 `json:"downloaded"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return 0, master.Garbage("qbittorrent torrents/info", err)
	}
	for _, t := range list {
		if !strings.EqualFold(t.Hash, infoHash) {
			continue
		}
		if t.Downloaded == nil || *t.Downloaded < 0 {
			return 0, master.Garbage("qbittorrent torrents/info", fmt.Errorf("torrent %s: no downloaded count", infoHash))
		}
		return *t.Downloaded, nil
	}
	return 0, fmt.Errorf("qbittorrent has no torrent %s", infoHash)
}

// DecodePieceStates decodes torrents/pieceStates (0 missing, 1 being
// downloaded, 2 have) into bitfields of the pieces held and of those
// being downloaded.
func DecodePieceStates(body []byte) (have, busy []byte, n int, err error) {
	var states []int
	if err := json.Unmarshal(body, &states); err != nil {
		return nil, nil, 0, master.Garbage("qbittorrent torrents/pieceStates", err)
	}
	have = make([]byte, (len(states)+7)/8)
	busy = make([]byte, len(have))
	for i, s := range states {
		switch s {
		case 2:
			have[i/8] |= 0x80 >> (i % 8)
		case 1:
			busy[i/8] |= 0x80 >> (i % 8)
		case 0:
		default:
			return nil, nil, 0, master.Garbage("qbittorrent torrents/pieceStates", fmt.Errorf("piece %d has state %d", i, s))
		}
	}
	return have, busy, len(states), nil
}

// DecodeBtslavePeers decodes sync/torrentPeers (a full update, rid=0)
// into the addresses of the peers whose client name starts with
// "btslave": the helpers of one master split its pieces by them. Entries
// it cannot read are skipped, and a reply without peers has none (the
// split is an optimisation: a master whose peer list says nothing is
// still served); a reply that is not a JSON object is garbage.
func DecodeBtslavePeers(body []byte) ([]netip.Addr, error) {
	var r struct {
		Peers map[string]json.RawMessage `json:"peers"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, master.Garbage("qbittorrent sync/torrentPeers", err)
	}
	var out []netip.Addr
	for _, raw := range r.Peers {
		var p struct {
			Client string `json:"client"`
			IP     string `json:"ip"`
		}
		if json.Unmarshal(raw, &p) != nil || !master.IsHelperClient(p.Client) {
			continue
		}
		if a, err := netip.ParseAddr(p.IP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// Preferences are the app/preferences fields used.
type Preferences struct {
	ListenPort       int    `json:"listen_port"`
	InterfaceAddress string `json:"current_interface_address"`
}

// DecodePreferences decodes app/preferences.
func DecodePreferences(body []byte) (Preferences, error) {
	var p struct {
		Preferences
		Port *int `json:"listen_port"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return Preferences{}, master.Garbage("qbittorrent app/preferences", err)
	}
	if p.Port == nil {
		return Preferences{}, master.Garbage("qbittorrent app/preferences", fmt.Errorf("no listen_port"))
	}
	p.ListenPort = *p.Port
	return p.Preferences, nil
}

func isHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

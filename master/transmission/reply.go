package transmission

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"

	"github.com/btslave/btslave/master"
)

// Torrent status codes of Transmission's RPC.
const (
	statusDownloadWait = 3
	statusDownloading  = 4
)

// DecodeClassic decodes a classic reply, {"result":"success",
// "arguments":{...}}, into its arguments.
func DecodeClassic(data []byte) (map[string]json.RawMessage, error) {
	var reply struct {
		Result    *string                    `json:"result"`
		Arguments map[string]json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(data, &reply); err != nil {
		return nil, master.Garbage("transmission", err)
	}
	if reply.Result == nil {
		return nil, master.Garbage("transmission", fmt.Errorf("reply has no result"))
	}
	if *reply.Result != "success" {
		return nil, fmt.Errorf("transmission: %s", *reply.Result)
	}
	if reply.Arguments == nil {
		reply.Arguments = map[string]json.RawMessage{}
	}
	return reply.Arguments, nil
}

// DecodeJSONRPC decodes a JSON-RPC 2.0 reply into its result object.
func DecodeJSONRPC(data []byte) (map[string]json.RawMessage, error) {
	var reply struct {
		JSONRPC string                     `json:"jsonrpc"`
		Result  map[string]json.RawMessage `json:"result"`
		Error   *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &reply); err != nil {
		return nil, master.Garbage("transmission json-rpc", err)
	}
	if reply.JSONRPC != "2.0" {
		return nil, master.Garbage("transmission json-rpc", fmt.Errorf("jsonrpc is %q, not \"2.0\"", reply.JSONRPC))
	}
	if reply.Error != nil {
		return nil, fmt.Errorf("transmission json-rpc: error %d: %s", reply.Error.Code, reply.Error.Message)
	}
	if reply.Result == nil {
		return nil, master.Garbage("transmission json-rpc", fmt.Errorf("reply has neither result nor error"))
	}
	return reply.Result, nil
}

// Snake is the JSON-RPC 2.0 (4.1+) name of a classic one: "torrent-get"
// → "torrent_get", "hashString" → "hash_string", "peer-port" → "peer_port".
func Snake(classic string) string {
	var b strings.Builder
	for i, r := range classic {
		switch {
		case r == '-':
			b.WriteByte('_')
		case unicode.IsUpper(r):
			if i > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func snakeArgs(args map[string]any) map[string]any {
	out := make(map[string]any, len(args))
	for k, v := range args {
		if fs, ok := v.([]string); ok && k == "fields" {
			sn := make([]string, len(fs))
			for i, f := range fs {
				sn[i] = Snake(f)
			}
			v = sn
		}
		out[Snake(k)] = v
	}
	return out
}

// get decodes field name (classic form, or its snake_case form) of args
// into v; a missing field is an error.
func get(args map[string]json.RawMessage, name string, v any) error {
	raw, ok := args[name]
	if !ok {
		raw, ok = args[Snake(name)]
	}
	if !ok {
		return master.Garbage("transmission", fmt.Errorf("reply lacks %q", name))
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return master.Garbage("transmission "+name, err)
	}
	return nil
}

// opt is get for a field that may be missing.
func opt(args map[string]json.RawMessage, name string, v any) error {
	if _, ok := args[name]; !ok {
		if _, ok := args[Snake(name)]; !ok {
			return nil
		}
	}
	return get(args, name, v)
}

// Speaks says, from a session-get reply, whether the daemon speaks JSON-RPC
// 2.0 and which version it is.
func Speaks(args map[string]json.RawMessage) (jsonrpc bool, version string) {
	var rpcVersion int
	var semver string
	_ = opt(args, "version", &version)
	_ = opt(args, "rpc-version", &rpcVersion)
	_ = opt(args, "rpc-version-semver", &semver)
	if major, _, ok := strings.Cut(semver, "."); ok {
		if m, err := strconv.Atoi(major); err == nil && m >= 6 {
			return true, version
		}
	}
	return rpcVersion >= 18, version
}

// torrent is a decoded torrent-get entry.
type torrent struct {
	master.Torrent
	metaPath string // the daemon's .torrent copy
}

// DecodeTorrents decodes the "torrents" of a torrent-get reply (either
// form) and keeps those still lacking data.
func DecodeTorrents(args map[string]json.RawMessage) ([]torrent, error) {
	var list []map[string]json.RawMessage
	if err := get(args, "torrents", &list); err != nil {
		return nil, err
	}
	var out []torrent
	for i, m := range list {
		var t torrent
		var status int
		var left int64
		var pieces string
		var labels []string
		var peers, trackers []map[string]json.RawMessage
		var err error
		for _, f := range []struct {
			name string
			v    any
		}{{"hashString", &t.InfoHash}, {"name", &t.Name}, {"status", &status}, {"percentDone", &t.Progress},
			{"leftUntilDone", &left}} {
			if err = get(m, f.name, f.v); err != nil {
				return nil, fmt.Errorf("torrent %d: %w", i, err)
			}
		}
		for _, f := range []struct {
			name string
			v    any
		}{{"pieces", &pieces}, {"pieceCount", &t.NumPieces}, {"magnetLink", &t.Magnet}, {"torrentFile", &t.metaPath},
			{"labels", &labels}, {"peers", &peers}, {"trackerStats", &trackers}} {
			if err = opt(m, f.name, f.v); err != nil {
				return nil, fmt.Errorf("torrent %d: %w", i, err)
			}
		}
		t.InfoHash = strings.ToLower(t.InfoHash)
		if !isHash(t.InfoHash) {
			return nil, master.Garbage("transmission", fmt.Errorf("torrent %d: hashString %q is not 40 hex digits", i, t.InfoHash))
		}
		if left <= 0 {
			continue // complete: nothing to help with
		}
		if t.NumPieces < 0 || t.NumPieces > 1<<24 {
			return nil, master.Garbage("transmission", fmt.Errorf("torrent %d: pieceCount %d", i, t.NumPieces))
		}
		if pieces != "" {
			if t.Pieces, err = decodeBitfield(pieces, t.NumPieces); err != nil {
				return nil, master.Garbage("transmission", fmt.Errorf("torrent %d: pieces: %w", i, err))
			}
		}
		if t.Magnet == "" {
			t.Magnet = master.Magnet(t.InfoHash, t.Name)
		}
		t.Category = strings.Join(labels, ",")
		t.Helpers = btslavePeers(peers)
		t.Seeders, t.Leechers = swarmSize(trackers)
		t.Stopped = status != statusDownloading && status != statusDownloadWait
		out = append(out, t)
	}
	return out, nil
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

// swarmSize is the most seeders and leechers any tracker scraped, -1
// when none said.
func swarmSize(trackers []map[string]json.RawMessage) (seeders, leechers int) {
	seeders, leechers = -1, -1
	for _, tr := range trackers {
		var s, l int
		if opt(tr, "seederCount", &s) == nil && s > seeders {
			seeders = s
		}
		if opt(tr, "leecherCount", &l) == nil && l > leechers {
			leechers = l
		}
	}
	return seeders, leechers
}

// DecodeReceived decodes a torrent-get reply for hashString and
// downloadedEver (either form) and returns the latter for infoHash.
func DecodeReceived(args map[string]json.RawMessage, infoHash string) (int64, error) {
	var list []map[string]json.RawMessage
	if err := get(args, "torrents", &list); err != nil {
		return 0, err
	}
	for _, m := range list {
		var h string
		var n int64
		if err := get(m, "hashString", &h); err != nil {
			return 0, err
		}
		if !strings.EqualFold(h, infoHash) {
			continue
		}
		if err := get(m, "downloadedEver", &n); err != nil {
			return 0, err
		}
		if n < 0 {
			return 0, master.Garbage("transmission", fmt.Errorf("downloadedEver %d", n))
		}
		return n, nil
	}
	return 0, fmt.Errorf("transmission has no torrent %s", infoHash)
}

// btslavePeers picks the addresses of the btslave peers of a torrent's
// "peers" list; entries it cannot read are skipped.
func btslavePeers(peers []map[string]json.RawMessage) []netip.Addr {
	var out []netip.Addr
	for _, p := range peers {
		var addr, client string
		if opt(p, "address", &addr) != nil || opt(p, "clientName", &client) != nil {
			continue
		}
		if !master.IsHelperClient(client) {
			continue
		}
		if a, err := netip.ParseAddr(addr); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

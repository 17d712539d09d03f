package feeds

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/internal/torrentfile"
)

// ParseTorrent validates a .torrent and describes it as a catalog entry
// (info hashes, name, size, trackers, a magnet link and the bytes
// themselves). It accepts v1, v2 and hybrid torrents and checks what a
// client needs to join without surprises: the info dictionary decodes, the
// piece length is positive and at most 64 MiB, v1 piece hashes are a
// multiple of 20 bytes and as many as the total length needs, and v2 file
// roots and piece layers are consistent. Errors wrap ErrBadTorrent and say
// what is wrong.
func ParseTorrent(data []byte) (Entry, error) {
	t, err := torrentfile.Parse(data)
	if err != nil {
		return Entry{}, err
	}
	mi, info, size := t.MetaInfo, &t.Info, t.Size
	e := Entry{
		Name:     info.BestName(),
		Size:     size,
		Trackers: cleanTiers(mi.UpvertedAnnounceList()),
		Torrent:  data,
	}
	if t.V1 != nil {
		e.InfoHashV1 = hex.EncodeToString(t.V1)
	}
	if t.V2 != nil {
		e.InfoHashV2 = hex.EncodeToString(t.V2)
	}
	e.Magnet = entryMagnet(&e)
	return e, nil
}

// ParseMagnet parses a magnet link (v1 btih, v2 btmh or both) into a
// catalog entry. A magnet that names no info hash is an error wrapping
// ErrBadMagnet.
func ParseMagnet(uri string) (Entry, error) {
	uri = strings.TrimSpace(uri)
	m, err := metainfo.ParseMagnetV2Uri(uri)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrBadMagnet, err)
	}
	if !m.InfoHash.Ok && !m.V2InfoHash.Ok {
		return Entry{}, fmt.Errorf("%w: it has no info hash (xt=urn:btih:... or urn:btmh:...)", ErrBadMagnet)
	}
	e := Entry{Name: strings.TrimSpace(m.DisplayName), Magnet: uri}
	if m.InfoHash.Ok {
		e.InfoHashV1 = m.InfoHash.Value.HexString()
	}
	if m.V2InfoHash.Ok {
		e.InfoHashV2 = m.V2InfoHash.Value.HexString()
	}
	for _, tr := range m.Trackers {
		e.Trackers = append(e.Trackers, []string{tr})
	}
	e.Trackers = cleanTiers(e.Trackers)
	if xl := m.Params.Get("xl"); xl != "" {
		if n, err := strconv.ParseInt(xl, 10, 64); err == nil && n > 0 {
			e.Size = n
		}
	}
	return e, nil
}

// entryMagnet makes a magnet link from what an entry knows.
func entryMagnet(e *Entry) string {
	var m metainfo.MagnetV2
	if e.InfoHashV1 != "" {
		m.InfoHash.Set(metainfo.NewHashFromHex(e.InfoHashV1))
	}
	if e.InfoHashV2 != "" {
		if err := m.V2InfoHash.Value.FromHexString(e.InfoHashV2); err == nil {
			m.V2InfoHash.Ok = true
		}
	}
	m.DisplayName = e.Name
	for _, tier := range e.Trackers {
		m.Trackers = append(m.Trackers, tier...)
	}
	return m.String()
}

// cleanTiers drops empty and repeated tracker URLs and empty tiers.
func cleanTiers(tiers [][]string) [][]string {
	seen := map[string]bool{}
	var out [][]string
	for _, tier := range tiers {
		var t []string
		for _, u := range tier {
			u = strings.TrimSpace(u)
			if u == "" || seen[u] {
				continue
			}
			seen[u] = true
			t = append(t, u)
		}
		if len(t) > 0 {
			out = append(out, t)
		}
	}
	return out
}

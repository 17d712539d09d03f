package friendsvc

import (
	"context"
	"net/netip"
	"strings"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/master/helper"
)

// MasterHelper adapts master/helper (#10) to Helper. When the two
// branches merge, the daemon passes NewMasterHelper(its *helper.Helper)
// as Options.Helper; nothing else needs re-pointing.
type MasterHelper struct{ H *helper.Helper }

// NewMasterHelper wraps h.
func NewMasterHelper(h *helper.Helper) MasterHelper { return MasterHelper{H: h} }

// Help joins the friend's swarm and makes it help the friend's master.
func (m MasterHelper) Help(ctx context.Context, r friends.HelpRequest, master netip.AddrPort) error {
	t := helper.Target{MetaInfo: r.Metainfo, Magnet: r.Magnet, Master: master}
	if len(t.MetaInfo) == 0 && t.Magnet == "" {
		t.Magnet = r.InfoHash
	}
	_, err := m.H.Help(ctx, t)
	return err
}

// ToMaster is the payload the helped swarm sent to its master.
func (m MasterHelper) ToMaster(infoHash string) (int64, bool) {
	for _, st := range m.H.Stats() {
		if strings.EqualFold(st.InfoHash, infoHash) {
			return st.ToMaster, true
		}
	}
	return 0, false
}

// Stop stops helping.
func (m MasterHelper) Stop(infoHash, reason string) {
	var ih metainfo.Hash
	if err := ih.FromHexString(infoHash); err == nil {
		m.H.Stop(ih, reason)
	}
}

var _ Helper = MasterHelper{}

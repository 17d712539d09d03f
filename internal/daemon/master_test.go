package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/lab"
	"github.com/btslave/btslave/master"
)

// waitMaster polls the daemon's status until ok holds for its master part.
func waitMaster(t *testing.T, a *App, what string, ok func(api.MasterState) bool) api.MasterState {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ms := a.Status(context.Background()).Master
		if ok(ms) {
			return ms
		}
		if time.Now().After(deadline) {
			t.Fatalf("master never %s: %+v", what, ms)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Ensure that wrong credentials for a real Transmission master, and then
// a master that is gone, show in the status with the reason, and that the
// daemon keeps running and retries with backoff.
func TestDaemonMasterStates(t *testing.T) {
	tr := lab.StartTransmission(t, lab.TransmissionOptions{RPCUsername: "owner", RPCPassword: "right"})
	a, stop := testAppWith(t, func(c *config.Config) {
		c.Master = config.Master{Kind: "transmission", URL: tr.RPCURL, Username: "owner", Password: "wrong",
			PeerAddress: tr.Addr.String()}
	})
	defer stop()
	ms := waitMaster(t, a, "refused the credentials", func(ms api.MasterState) bool { return ms.State == master.StateAuth })
	if !strings.Contains(ms.Error, "username and password") || ms.Kind != "transmission" {
		t.Errorf("status = %+v; want the reason and what to check", ms)
	}
	// Refused credentials wait the longest backoff (2m): no tight loop.
	if wait := time.Until(ms.NextPoll); wait < time.Minute {
		t.Errorf("next poll in %v after refused credentials; want the long backoff", wait)
	}
}

// Ensure that help-master over the API joins the swarm for the master at
// the address given, and rejects a bad address as the caller's fault.
func TestDaemonHelpMasterAPI(t *testing.T) {
	a := testApp(t)
	_, _, ih, _ := lab.MakeTorrent(t, lab.TorrentOptions{Size: 1 << 20})
	ctx := context.Background()
	if _, err := a.Help(ctx, api.HelpRequest{RepeatRequest: api.RepeatRequest{InfoHash: ih}, Addr: "nowhere"}); err == nil {
		t.Error("a bad master address is accepted")
	}
	mt, err := a.Help(ctx, api.HelpRequest{RepeatRequest: api.RepeatRequest{InfoHash: ih}, Addr: "127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	if mt.InfoHash != ih || mt.Master != "127.0.0.1:9" || mt.Source != "cli" {
		t.Errorf("help = %+v", mt)
	}
	ms := a.Status(ctx).Master
	if len(ms.Torrents) != 1 || ms.Torrents[0].InfoHash != ih {
		t.Errorf("status master = %+v", ms)
	}
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		found[mf.GetName()] = true
	}
	for _, name := range []string{"btslave_master_forwarded_bytes", "btslave_master_swarm_downloaded_bytes",
		"btslave_master_swarm_uploaded_bytes", "btslave_master_progress", "btslave_master_connected"} {
		if !found[name] {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

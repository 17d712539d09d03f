package lab

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TransmissionProbeAddr is where transmission-daemon 3.00 does a UDP
// connect() at startup to learn its public IPv6 address (no datagram is
// sent). The guard refuses it; StartTransmission allows that refusal.
const TransmissionProbeAddr = "2001:1890:1112:1::20"

// TransmissionOptions configures StartTransmission. Zero values pick the
// defaults.
type TransmissionOptions struct {
	Addr     netip.Addr // peer address; default NextAddr()
	PeerPort int        // default a free port
	// UploadLimit and DownloadLimit are in bytes per second, 0 for none.
	// Transmission counts in kB of 1000 bytes: they are rounded up.
	UploadLimit, DownloadLimit int64
	DownloadDir                string // default <dir>/downloads
	// AllowRefusals lists further guard refusals (IP or ip:port) that do
	// not fail the test; TransmissionProbeAddr is always allowed.
	AllowRefusals []string
	// RPCUsername and RPCPassword turn RPC basic auth on when set.
	RPCUsername, RPCPassword string
}

// Transmission is a running transmission-daemon with a small RPC client.
//
// Pitfalls: it never dials peers in 127.0.0.0/8 (it only accepts them, so
// start it first or have peers dial it); it keys peers by IP; it waits
// about 10 s before its first unchoke.
type Transmission struct {
	*Process
	Addr        netip.Addr
	PeerPort    int
	RPCURL      string // http://127.0.0.1:P/transmission/rpc
	DownloadDir string

	client    http.Client
	auth      [2]string // RPC basic auth, when on
	mu        sync.Mutex
	sessionID string
}

// StartTransmission writes settings.json and starts
// `transmission-daemon -f -g CONFDIR -e LOGFILE`, then checks over RPC that
// the settings took effect.
func StartTransmission(t testing.TB, opts TransmissionOptions) *Transmission {
	t.Helper()
	Require(t, "transmission-daemon")
	labFor(t)
	peerAddr(t, "transmission", &opts.Addr, &opts.PeerPort)
	dir := t.TempDir()
	if opts.DownloadDir == "" {
		opts.DownloadDir = filepath.Join(dir, "downloads")
	}
	confDir := filepath.Join(dir, "config")
	for _, d := range []string{confDir, opts.DownloadDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("lab: transmission: %v", err)
		}
	}
	rpcPort := FreePort(t, Loopback)
	settings := map[string]any{
		"bind-address-ipv4":            opts.Addr.String(),
		"bind-address-ipv6":            "::1",
		"peer-port":                    opts.PeerPort,
		"peer-port-random-on-start":    false,
		"rpc-enabled":                  true,
		"rpc-bind-address":             "127.0.0.1",
		"rpc-port":                     rpcPort,
		"rpc-whitelist-enabled":        true,
		"rpc-whitelist":                "127.0.0.1",
		"rpc-host-whitelist-enabled":   false,
		"rpc-authentication-required":  false,
		"dht-enabled":                  false,
		"lpd-enabled":                  false,
		"pex-enabled":                  false,
		"utp-enabled":                  false,
		"port-forwarding-enabled":      false,
		"blocklist-enabled":            false,
		"download-dir":                 opts.DownloadDir,
		"incomplete-dir-enabled":       false,
		"watch-dir-enabled":            false,
		"rename-partial-files":         false,
		"start-added-torrents":         true,
		"trash-original-torrent-files": false,
		"ratio-limit-enabled":          false,
		"idle-seeding-limit-enabled":   false,
		"download-queue-enabled":       false,
		"seed-queue-enabled":           false,
		"queue-stalled-enabled":        false,
		"speed-limit-up":               kB(opts.UploadLimit),
		"speed-limit-up-enabled":       opts.UploadLimit > 0,
		"speed-limit-down":             kB(opts.DownloadLimit),
		"speed-limit-down-enabled":     opts.DownloadLimit > 0,
		"alt-speed-enabled":            false,
		"alt-speed-time-enabled":       false,
		"encryption":                   1, // preferred
		"message-level":                2, // info
		"umask":                        18,
	}
	if opts.RPCUsername != "" || opts.RPCPassword != "" {
		settings["rpc-authentication-required"] = true
		settings["rpc-username"] = opts.RPCUsername
		settings["rpc-password"] = opts.RPCPassword // hashed by the daemon on start
	}
	data, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		t.Fatalf("lab: transmission: %v", err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "settings.json"), data, 0o644); err != nil {
		t.Fatalf("lab: transmission: %v", err)
	}

	logFile := filepath.Join(dir, "transmission.log")
	p := startProcess(t, procSpec{
		name:  "transmission",
		dir:   dir,
		path:  "transmission-daemon",
		args:  []string{"-f", "-g", confDir, "-e", logFile},
		logs:  []string{logFile},
		allow: append([]string{TransmissionProbeAddr}, opts.AllowRefusals...),
	})
	tr := &Transmission{
		Process:     p,
		Addr:        opts.Addr,
		PeerPort:    opts.PeerPort,
		RPCURL:      fmt.Sprintf("http://127.0.0.1:%d/transmission/rpc", rpcPort),
		DownloadDir: opts.DownloadDir,
		client:      http.Client{Timeout: 10 * time.Second},
		auth:        [2]string{opts.RPCUsername, opts.RPCPassword},
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var session map[string]any
	err = poll(ctx, p, func() (bool, error) {
		err := tr.call("session-get", nil, &session)
		return err == nil, err
	})
	if err != nil {
		t.Fatalf("lab: transmission did not start: %v", err)
	}
	// The daemon must run with the settings written above.
	want := map[string]any{
		"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
		"port-forwarding-enabled": false, "peer-port": float64(opts.PeerPort),
		"download-dir": opts.DownloadDir,
	}
	for k, v := range want {
		if session[k] != v {
			t.Fatalf("lab: transmission runs with %s=%v, want %v: settings.json not applied", k, session[k], v)
		}
	}
	// It binds the peer port a moment after RPC answers.
	if err := waitTCP(ctx, p, netip.AddrPortFrom(opts.Addr, uint16(opts.PeerPort))); err != nil {
		t.Fatalf("lab: transmission peer port: %v", err)
	}
	checkListeners(t, p)
	return tr
}

// kB converts bytes per second to Transmission's kB/s (1000 bytes),
// rounding up.
func kB(bytesPerSec int64) int64 { return (bytesPerSec + 999) / 1000 }

// errRPC is wrapped by errors the Transmission RPC reports.
var errRPC = errors.New("transmission rpc")

// call performs one RPC method. args and result are marshalled to and from
// the "arguments" member.
func (tr *Transmission) call(method string, args, result any) error {
	reqBody, err := json.Marshal(map[string]any{"method": method, "arguments": args})
	if err != nil {
		return err
	}
	for range 3 {
		req, err := http.NewRequest(http.MethodPost, tr.RPCURL, bytes.NewReader(reqBody))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if tr.auth != ([2]string{}) {
			req.SetBasicAuth(tr.auth[0], tr.auth[1])
		}
		tr.mu.Lock()
		req.Header.Set("X-Transmission-Session-Id", tr.sessionID)
		tr.mu.Unlock()
		resp, err := tr.client.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		if resp.StatusCode == http.StatusConflict {
			tr.mu.Lock()
			tr.sessionID = resp.Header.Get("X-Transmission-Session-Id")
			tr.mu.Unlock()
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: HTTP %s: %q", method, resp.Status, body)
		}
		var reply struct {
			Result    string          `json:"result"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if err := json.Unmarshal(body, &reply); err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		if reply.Result != "success" {
			return fmt.Errorf("%s: %w: %s", method, errRPC, reply.Result)
		}
		if result != nil && len(reply.Arguments) > 0 {
			if err := json.Unmarshal(reply.Arguments, result); err != nil {
				return fmt.Errorf("%s: %w", method, err)
			}
		}
		return nil
	}
	return fmt.Errorf("%s: no valid X-Transmission-Session-Id after 3 tries", method)
}

// AddTorrent adds the .torrent at path, to download into (or seed from)
// downloadDir ("" for the daemon's download dir), and returns its ID.
// Existing data is verified first.
func (tr *Transmission) AddTorrent(path, downloadDir string) (int, error) {
	meta, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("add torrent: %w", err)
	}
	args := map[string]any{"metainfo": base64.StdEncoding.EncodeToString(meta), "paused": false}
	if downloadDir != "" {
		args["download-dir"] = downloadDir
	}
	var reply struct {
		Added     *struct{ ID int } `json:"torrent-added"`
		Duplicate *struct{ ID int } `json:"torrent-duplicate"`
	}
	if err := tr.call("torrent-add", args, &reply); err != nil {
		return 0, fmt.Errorf("add torrent %s: %w", path, err)
	}
	switch {
	case reply.Added != nil:
		return reply.Added.ID, nil
	case reply.Duplicate != nil:
		return reply.Duplicate.ID, nil
	}
	return 0, fmt.Errorf("add torrent %s: reply names no torrent", path)
}

// Torrent status codes of Transmission's RPC.
const (
	TransmissionStopped      = 0
	TransmissionCheckWait    = 1
	TransmissionChecking     = 2
	TransmissionDownloadWait = 3
	TransmissionDownloading  = 4
	TransmissionSeedWait     = 5
	TransmissionSeeding      = 6
)

// TransmissionTorrent is the status of one torrent, as torrent-get reports
// it.
type TransmissionTorrent struct {
	ID             int                `json:"id"`
	HashString     string             `json:"hashString"`
	Name           string             `json:"name"`
	Status         int                `json:"status"`
	PercentDone    float64            `json:"percentDone"`
	HaveValid      int64              `json:"haveValid"`
	LeftUntilDone  int64              `json:"leftUntilDone"`
	UploadedEver   int64              `json:"uploadedEver"`
	DownloadedEver int64              `json:"downloadedEver"`
	RateUpload     int64              `json:"rateUpload"`
	RateDownload   int64              `json:"rateDownload"`
	PeersConnected int                `json:"peersConnected"`
	Peers          []TransmissionPeer `json:"peers"`
	Error          int                `json:"error"`
	ErrorString    string             `json:"errorString"`
}

// TransmissionPeer is one connected peer of a torrent.
type TransmissionPeer struct {
	Address      string  `json:"address"`
	Port         int     `json:"port"`
	ClientName   string  `json:"clientName"`
	Progress     float64 `json:"progress"`
	RateToClient int64   `json:"rateToClient"`
	RateToPeer   int64   `json:"rateToPeer"`
	FlagStr      string  `json:"flagStr"`
}

var transmissionFields = []string{
	"id", "hashString", "name", "status", "percentDone", "haveValid", "leftUntilDone",
	"uploadedEver", "downloadedEver", "rateUpload", "rateDownload", "peersConnected", "peers",
	"error", "errorString",
}

// Torrent returns the status of torrent id.
func (tr *Transmission) Torrent(id int) (TransmissionTorrent, error) {
	var reply struct {
		Torrents []TransmissionTorrent `json:"torrents"`
	}
	args := map[string]any{"ids": []int{id}, "fields": transmissionFields}
	if err := tr.call("torrent-get", args, &reply); err != nil {
		return TransmissionTorrent{}, err
	}
	if len(reply.Torrents) != 1 {
		return TransmissionTorrent{}, fmt.Errorf("torrent %d: %w: no such torrent", id, errRPC)
	}
	return reply.Torrents[0], nil
}

// WaitComplete waits until torrent id has all its data, verified, and is
// seeding (or queued to). It fails early on a torrent error.
func (tr *Transmission) WaitComplete(ctx context.Context, id int) (TransmissionTorrent, error) {
	var last TransmissionTorrent
	err := poll(ctx, tr.Process, func() (bool, error) {
		st, err := tr.Torrent(id)
		if err != nil {
			return false, err
		}
		last = st
		if st.Error != 0 {
			return false, fmt.Errorf("torrent %d: error %d: %s", id, st.Error, st.ErrorString)
		}
		return st.LeftUntilDone == 0 && st.PercentDone == 1 &&
			(st.Status == TransmissionSeeding || st.Status == TransmissionSeedWait), nil
	})
	if err != nil {
		return last, fmt.Errorf("transmission: torrent %d not complete (status %d, %.1f%%): %w",
			id, last.Status, 100*last.PercentDone, err)
	}
	return last, nil
}

// SetLimits sets the global upload and download limits in bytes per second
// (0 for none; rounded up to kB of 1000 bytes).
func (tr *Transmission) SetLimits(upload, download int64) error {
	return tr.call("session-set", map[string]any{
		"speed-limit-up":           kB(upload),
		"speed-limit-up-enabled":   upload > 0,
		"speed-limit-down":         kB(download),
		"speed-limit-down-enabled": download > 0,
	}, nil)
}

// Reannounce asks the tracker for peers again for torrent id.
func (tr *Transmission) Reannounce(id int) error {
	return tr.call("torrent-reannounce", map[string]any{"ids": []int{id}}, nil)
}

// Remove removes torrent id, and its data too when deleteData is set.
func (tr *Transmission) Remove(id int, deleteData bool) error {
	return tr.call("torrent-remove", map[string]any{"ids": []int{id}, "delete-local-data": deleteData}, nil)
}

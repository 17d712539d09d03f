package lab

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// QBittorrentOptions configures StartQBittorrent. Zero values pick the
// defaults.
type QBittorrentOptions struct {
	Addr      netip.Addr // peer address; default NextAddr()
	Port      int        // peer port; default a free port
	WebUIPort int        // on 127.0.0.1; default a free port
	SavePath  string     // default save path; default <dir>/downloads
	// UploadLimit and DownloadLimit are in bytes per second, 0 for none.
	// The config file counts in KiB/s: they are rounded up; SetUploadLimit
	// takes bytes/s exactly.
	UploadLimit, DownloadLimit int64
	// AllowRefusals lists guard refusals (IP or ip:port) that do not fail
	// the test.
	AllowRefusals []string
}

// QBittorrent is a running qbittorrent-nox with a WebUI API v2 client,
// logged in.
type QBittorrent struct {
	*Process
	Addr     netip.Addr
	Port     int
	URL      string // WebUI, http://127.0.0.1:P
	SavePath string
	Username string
	Password string

	client *http.Client
}

// StartQBittorrent writes PROFILE/qBittorrent/config/qBittorrent.conf,
// starts `qbittorrent-nox --profile=PROFILE` with stdin from /dev/null,
// logs in to the WebUI and checks that the running preferences are the
// ones written (DHT, LSD, PeX, UPnP off, TCP only, bound to Addr).
func StartQBittorrent(t testing.TB, opts QBittorrentOptions) *QBittorrent {
	t.Helper()
	Require(t, "qbittorrent-nox")
	labFor(t)
	peerAddr(t, "qbittorrent", &opts.Addr, &opts.Port)
	if opts.WebUIPort == 0 {
		opts.WebUIPort = FreePort(t, Loopback)
	}
	dir := t.TempDir()
	if opts.SavePath == "" {
		opts.SavePath = filepath.Join(dir, "downloads")
	}
	profile := filepath.Join(dir, "profile")
	confDir := filepath.Join(profile, "qBittorrent", "config")
	logDir := filepath.Join(dir, "logs")
	for _, d := range []string{confDir, logDir, opts.SavePath} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("lab: qbittorrent: %v", err)
		}
	}
	password := rand.Text()
	hash, err := qbtPasswordHash(password)
	if err != nil {
		t.Fatalf("lab: qbittorrent: %v", err)
	}
	conf := qbtConfig(opts, hash, logDir)
	if err := os.WriteFile(filepath.Join(confDir, "qBittorrent.conf"), []byte(conf), 0o644); err != nil {
		t.Fatalf("lab: qbittorrent: %v", err)
	}

	p := startProcess(t, procSpec{
		name:  "qbittorrent",
		dir:   dir,
		path:  "qbittorrent-nox",
		args:  []string{"--profile=" + profile},
		logs:  []string{filepath.Join(logDir, "qbittorrent.log")},
		allow: opts.AllowRefusals,
	})
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("lab: qbittorrent: %v", err)
	}
	q := &QBittorrent{
		Process:  p,
		Addr:     opts.Addr,
		Port:     opts.Port,
		URL:      fmt.Sprintf("http://127.0.0.1:%d", opts.WebUIPort),
		SavePath: opts.SavePath,
		Username: "admin",
		Password: password,
		client:   &http.Client{Jar: jar, Timeout: 10 * time.Second},
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := poll(ctx, p, func() (bool, error) {
		err := q.Login()
		return err == nil, err
	}); err != nil {
		t.Fatalf("lab: qbittorrent did not start: %v", err)
	}
	if err := q.checkPreferences(opts); err != nil {
		t.Fatalf("lab: qbittorrent: %v", err)
	}
	if err := waitTCP(ctx, p, netip.AddrPortFrom(opts.Addr, uint16(opts.Port))); err != nil {
		t.Fatalf("lab: qbittorrent peer port: %v", err)
	}
	checkListeners(t, p)
	return q
}

// qbtPasswordHash returns the WebUI\Password_PBKDF2 value for password:
// PBKDF2-SHA512, 100000 iterations, 16-byte salt, 64-byte key, both
// base64, as "@ByteArray(salt:key)".
func qbtPasswordHash(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key, err := pbkdf2.Key(sha512.New, password, salt, 100000, 64)
	if err != nil {
		return "", fmt.Errorf("password hash: %w", err)
	}
	return "@ByteArray(" + base64.StdEncoding.EncodeToString(salt) + ":" +
		base64.StdEncoding.EncodeToString(key) + ")", nil
}

// qbtConfig returns qBittorrent.conf. The [BitTorrent] Session\ keys are the
// ones 4.5.2 reads; the [Preferences] ones are older names it may migrate
// from, set the same way so that no migration can turn anything on.
func qbtConfig(opts QBittorrentOptions, passwordHash, logDir string) string {
	kib := func(b int64) string { return strconv.FormatInt((b+1023)/1024, 10) }
	addr, port := opts.Addr.String(), strconv.Itoa(opts.Port)
	lines := []string{
		"[LegalNotice]",
		"Accepted=true",
		"",
		"[Application]",
		`FileLogger\Enabled=true`,
		`FileLogger\Path=` + logDir,
		`FileLogger\Backup=false`,
		`FileLogger\DeleteOld=false`,
		"",
		"[BitTorrent]",
		`Session\DHTEnabled=false`,
		`Session\LSDEnabled=false`,
		`Session\PeXEnabled=false`,
		`Session\BTProtocol=TCP`,
		`Session\uTPEnabled=false`,
		`Session\Interface=lo`,
		`Session\InterfaceName=lo`,
		`Session\InterfaceAddress=` + addr,
		`Session\Port=` + port,
		`Session\UseRandomPort=false`,
		`Session\MultiConnectionsPerIp=true`,
		`Session\IgnoreLimitsOnLAN=false`,
		`Session\GlobalUPSpeedLimit=` + kib(opts.UploadLimit),
		`Session\GlobalDLSpeedLimit=` + kib(opts.DownloadLimit),
		`Session\DefaultSavePath=` + opts.SavePath,
		`Session\TempPathEnabled=false`,
		`Session\QueueingSystemEnabled=false`,
		`Session\AddTorrentPaused=false`,
		`Session\AddTrackersEnabled=false`,
		`Session\ReannounceWhenAddressChanged=false`,
		`Session\AnonymousModeEnabled=false`,
		`TrackerEnabled=false`,
		"",
		"[Network]",
		`PortForwardingEnabled=false`,
		`Proxy\Type=None`,
		"",
		"[Preferences]",
		`Bittorrent\DHT=false`,
		`Bittorrent\LSD=false`,
		`Bittorrent\PeX=false`,
		`Bittorrent\uTP=false`,
		`Connection\Interface=lo`,
		`Connection\InterfaceName=lo`,
		`Connection\InterfaceAddress=` + addr,
		`Connection\PortRangeMin=` + port,
		`Connection\UPnP=false`,
		`Connection\ResolvePeerCountries=false`,
		`Connection\ResolvePeerHostNames=false`,
		`Advanced\trackerEnabled=false`,
		`Advanced\IgnoreLimitsLAN=false`,
		`DynDNS\Enabled=false`,
		`MailNotification\enabled=false`,
		`General\Locale=en`,
		`WebUI\Enabled=true`,
		`WebUI\Address=127.0.0.1`,
		`WebUI\Port=` + strconv.Itoa(opts.WebUIPort),
		`WebUI\UseUPnP=false`,
		`WebUI\HTTPS\Enabled=false`,
		`WebUI\Username=admin`,
		`WebUI\Password_PBKDF2="` + passwordHash + `"`,
		`WebUI\LocalHostAuth=true`,
		`WebUI\CSRFProtection=true`,
		`WebUI\HostHeaderValidation=true`,
		`WebUI\ServerDomains=*`,
		`WebUI\AlternativeUIEnabled=false`,
		"",
	}
	return strings.Join(lines, "\n")
}

// checkPreferences compares the running preferences with opts.
func (q *QBittorrent) checkPreferences(opts QBittorrentOptions) error {
	var prefs map[string]any
	if err := q.getJSON("/api/v2/app/preferences", &prefs); err != nil {
		return err
	}
	want := map[string]any{
		"dht":                                   false,
		"lsd":                                   false,
		"pex":                                   false,
		"upnp":                                  false,
		"web_ui_upnp":                           false,
		"random_port":                           false,
		"listen_port":                           float64(opts.Port),
		"bittorrent_protocol":                   float64(1), // TCP only
		"current_network_interface":             "lo",
		"current_interface_address":             opts.Addr.String(),
		"enable_multi_connections_from_same_ip": true,
		"limit_lan_peers":                       true,
		"resolve_peer_countries":                false,
		"save_path":                             opts.SavePath,
	}
	var bad []string
	for k, v := range want {
		if got, ok := prefs[k]; !ok || got != v {
			bad = append(bad, fmt.Sprintf("%s=%v (want %v)", k, got, v))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("runs with preferences other than the config written: %s", strings.Join(bad, ", "))
	}
	return nil
}

// do sends a request with the Referer and Origin the WebUI expects and
// returns the body of a 200 reply.
func (q *QBittorrent) do(req *http.Request) ([]byte, error) {
	req.Header.Set("Referer", q.URL)
	req.Header.Set("Origin", q.URL)
	resp, err := q.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("%s %s: %s: %q", req.Method, req.URL.Path, resp.Status, body)
	}
	return body, nil
}

func (q *QBittorrent) postForm(path string, form url.Values) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, q.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return q.do(req)
}

func (q *QBittorrent) getJSON(path string, v any) error {
	req, err := http.NewRequest(http.MethodGet, q.URL+path, nil)
	if err != nil {
		return err
	}
	body, err := q.do(req)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}

// Login logs in to the WebUI (StartQBittorrent has done it already).
func (q *QBittorrent) Login() error {
	body, err := q.postForm("/api/v2/auth/login", url.Values{"username": {q.Username}, "password": {q.Password}})
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if string(body) != "Ok." {
		return fmt.Errorf("login: %q", body)
	}
	return nil
}

// AddTorrent adds the .torrent at path, saving to (or seeding from)
// savePath ("" for the default save path). Existing data is checked.
func (q *QBittorrent) AddTorrent(path, savePath string) error {
	meta, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("add torrent: %w", err)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("torrents", filepath.Base(path))
	if err != nil {
		return err
	}
	if _, err := fw.Write(meta); err != nil {
		return err
	}
	fields := map[string]string{"paused": "false", "autoTMM": "false"}
	if savePath != "" {
		fields["savepath"] = savePath
	}
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			return err
		}
	}
	if err := mw.Close(); err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, q.URL+"/api/v2/torrents/add", &buf)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	body, err := q.do(req)
	if err != nil {
		return fmt.Errorf("add torrent %s: %w", path, err)
	}
	if string(body) != "Ok." {
		return fmt.Errorf("add torrent %s: %q", path, body)
	}
	return nil
}

// QBTorrent is one torrent as /api/v2/torrents/info reports it.
type QBTorrent struct {
	Hash       string  `json:"hash"`
	Name       string  `json:"name"`
	State      string  `json:"state"` // e.g. downloading, uploading, stalledUP, checkingUP, error
	Progress   float64 `json:"progress"`
	AmountLeft int64   `json:"amount_left"`
	Completed  int64   `json:"completed"`
	Uploaded   int64   `json:"uploaded"`
	Downloaded int64   `json:"downloaded"`
	UpSpeed    int64   `json:"upspeed"`
	DlSpeed    int64   `json:"dlspeed"`
	NumSeeds   int     `json:"num_seeds"`
	NumLeechs  int     `json:"num_leechs"`
	SavePath   string  `json:"save_path"`
}

// Torrents lists the torrents.
func (q *QBittorrent) Torrents() ([]QBTorrent, error) {
	var ts []QBTorrent
	if err := q.getJSON("/api/v2/torrents/info", &ts); err != nil {
		return nil, fmt.Errorf("torrents: %w", err)
	}
	return ts, nil
}

// WaitComplete waits until the torrent infoHash (hex) has all its data and
// is seeding.
func (q *QBittorrent) WaitComplete(ctx context.Context, infoHash string) (QBTorrent, error) {
	var last QBTorrent
	err := poll(ctx, q.Process, func() (bool, error) {
		ts, err := q.Torrents()
		if err != nil {
			return false, err
		}
		for _, tt := range ts {
			if strings.EqualFold(tt.Hash, infoHash) {
				last = tt
				if tt.State == "error" || tt.State == "missingFiles" {
					return false, fmt.Errorf("torrent state %s", tt.State)
				}
				seeding := tt.State == "uploading" || tt.State == "stalledUP" || tt.State == "forcedUP"
				return tt.Progress == 1 && tt.AmountLeft == 0 && seeding, nil
			}
		}
		return false, fmt.Errorf("torrent %s not listed", infoHash)
	})
	if err != nil {
		return last, fmt.Errorf("qbittorrent: torrent %s not complete (state %q, progress %.3f): %w",
			infoHash, last.State, last.Progress, err)
	}
	return last, nil
}

// SetUploadLimit sets the global upload limit in bytes per second (0 for
// none).
func (q *QBittorrent) SetUploadLimit(bytesPerSec int64) error {
	_, err := q.postForm("/api/v2/transfer/setUploadLimit", url.Values{"limit": {strconv.FormatInt(bytesPerSec, 10)}})
	if err != nil {
		return fmt.Errorf("set upload limit: %w", err)
	}
	return nil
}

// SetDownloadLimit sets the global download limit in bytes per second (0
// for none).
func (q *QBittorrent) SetDownloadLimit(bytesPerSec int64) error {
	_, err := q.postForm("/api/v2/transfer/setDownloadLimit", url.Values{"limit": {strconv.FormatInt(bytesPerSec, 10)}})
	if err != nil {
		return fmt.Errorf("set download limit: %w", err)
	}
	return nil
}

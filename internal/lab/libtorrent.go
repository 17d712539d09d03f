package lab

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// libtorrentScript runs one libtorrent session; see its docstring for the
// protocol on stdin and stdout.
//
//go:embed libtorrent_session.py
var libtorrentScript []byte

// LibtorrentOptions configures StartLibtorrent. Zero values pick the
// defaults.
type LibtorrentOptions struct {
	Torrent  string     // .torrent; required
	SavePath string     // default <dir>/downloads; holds the data to seed
	Addr     netip.Addr // listen and outgoing address; default NextAddr()
	Port     int        // default a free port
	// UploadLimit and DownloadLimit are in bytes per second, 0 for none.
	// They apply to loopback peers too (see the package doc).
	UploadLimit, DownloadLimit int64
	// SeedMode trusts the data in SavePath without checking it.
	SeedMode bool
	// ShareMode adds the torrent in share mode (libtorrent's own
	// repeater), aiming at ShareModeTarget (default 3).
	ShareMode       bool
	ShareModeTarget int
	// Peers are dialled at start, and again every 5 s while the torrent is
	// not finished and not connected to them.
	Peers []netip.AddrPort
	// AllowRefusals lists guard refusals (IP or ip:port) that do not fail
	// the test.
	AllowRefusals []string
}

// LibtorrentStatus is one status line of the session.
type LibtorrentStatus struct {
	Time                 float64          `json:"time"` // Unix seconds
	Progress             float64          `json:"progress"`
	State                string           `json:"state"`
	TotalUpload          int64            `json:"total_upload"`
	TotalDownload        int64            `json:"total_download"`
	TotalPayloadUpload   int64            `json:"total_payload_upload"`
	TotalPayloadDownload int64            `json:"total_payload_download"`
	AllTimeUpload        int64            `json:"all_time_upload"`
	AllTimeDownload      int64            `json:"all_time_download"`
	UploadRate           int64            `json:"upload_rate"`   // payload bytes/s
	DownloadRate         int64            `json:"download_rate"` // payload bytes/s
	NumPeers             int              `json:"num_peers"`
	IsSeeding            bool             `json:"is_seeding"`
	IsFinished           bool             `json:"is_finished"`
	Peers                []LibtorrentPeer `json:"peers"`
}

// LibtorrentPeer is one connected peer in a status line.
type LibtorrentPeer struct {
	Addr          string  `json:"addr"`
	Client        string  `json:"client"`
	UploadOnly    bool    `json:"upload_only"` // the peer said upload_only
	Seed          bool    `json:"seed"`
	Outgoing      bool    `json:"outgoing"` // we dialled it
	Progress      float64 `json:"progress"`
	TotalUpload   int64   `json:"total_upload"`
	TotalDownload int64   `json:"total_download"`
	UpSpeed       int64   `json:"up_speed"`
	DownSpeed     int64   `json:"down_speed"`
}

// ExtendedHandshake is a peer_log line that shows an extended handshake,
// such as `127.0.0.2:6881 <== EXTENDED_HANDSHAKE [ ... upload_only: 1 ... ]`;
// "<==" marks the peer's, "==>" ours.
type ExtendedHandshake struct {
	Peer    string `json:"peer"`
	Message string `json:"message"`
}

// Libtorrent is a running python3-libtorrent session with one torrent.
type Libtorrent struct {
	*Process
	Addr     netip.Addr
	Port     int
	SavePath string

	stdinMu sync.Mutex
	stdin   io.WriteCloser
	readers sync.WaitGroup // the stdout reader

	mu         sync.Mutex
	status     LibtorrentStatus
	haveStatus bool
	handshakes []ExtendedHandshake
	errs       []string
	ready      chan struct{}
	done       chan struct{}
}

// StartLibtorrent writes the session script and its config into a private
// dir and runs it with /usr/bin/python3. It returns once the session
// listens and has the torrent.
func StartLibtorrent(t testing.TB, opts LibtorrentOptions) *Libtorrent {
	t.Helper()
	Require(t, PythonLibtorrent)
	labFor(t)
	if opts.Torrent == "" {
		t.Fatal("lab: libtorrent: LibtorrentOptions.Torrent is required")
	}
	peerAddr(t, "libtorrent", &opts.Addr, &opts.Port)
	dir := t.TempDir()
	if opts.SavePath == "" {
		opts.SavePath = filepath.Join(dir, "downloads")
		if err := os.MkdirAll(opts.SavePath, 0o755); err != nil {
			t.Fatalf("lab: libtorrent: %v", err)
		}
	}
	peers := []string{}
	for _, p := range opts.Peers {
		peers = append(peers, p.String())
	}
	cfg, err := json.Marshal(map[string]any{
		"addr":              opts.Addr.String(),
		"port":              opts.Port,
		"torrent":           opts.Torrent,
		"save_path":         opts.SavePath,
		"upload_limit":      opts.UploadLimit,
		"download_limit":    opts.DownloadLimit,
		"seed_mode":         opts.SeedMode,
		"share_mode":        opts.ShareMode,
		"share_mode_target": opts.ShareModeTarget,
		"peers":             peers,
	})
	if err != nil {
		t.Fatalf("lab: libtorrent: %v", err)
	}
	script := filepath.Join(dir, "libtorrent_session.py")
	cfgPath := filepath.Join(dir, "session.json")
	if err := os.WriteFile(script, libtorrentScript, 0o644); err != nil {
		t.Fatalf("lab: libtorrent: %v", err)
	}
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatalf("lab: libtorrent: %v", err)
	}

	// Stdout is read through a pipe and copied to a file as it is parsed.
	stdoutLog := filepath.Join(dir, "libtorrent.stdout")
	logFile, err := os.Create(stdoutLog)
	if err != nil {
		t.Fatalf("lab: libtorrent: %v", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		logFile.Close()
		t.Fatalf("lab: libtorrent: %v", err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		logFile.Close()
		outR.Close()
		outW.Close()
		t.Fatalf("lab: libtorrent: %v", err)
	}
	lt := &Libtorrent{
		Addr:     opts.Addr,
		Port:     opts.Port,
		SavePath: opts.SavePath,
		stdin:    inW,
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
	}
	lt.readers.Add(1)
	go func() {
		defer lt.readers.Done()
		defer logFile.Close()
		defer outR.Close()
		lt.readLines(io.TeeReader(outR, logFile))
	}()
	closePipes := func() {
		inW.Close()
		outW.Close() // if the program did not start
		lt.readers.Wait()
	}
	p := startProcessOr(t, procSpec{
		name:   "libtorrent",
		dir:    dir,
		path:   python,
		args:   []string{"-u", script, cfgPath},
		logs:   []string{stdoutLog},
		allow:  opts.AllowRefusals,
		stdout: outW,
		stdin:  inR,
	}, closePipes)
	// The program holds its own copies now.
	outW.Close()
	inR.Close()
	lt.Process = p
	p.afterStop = closePipes

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	select {
	case <-lt.ready:
	case <-p.exited:
		t.Fatalf("lab: libtorrent exited at start: %v; errors: %v", p.waitErr, lt.Errors())
	case <-ctx.Done():
		t.Fatalf("lab: libtorrent did not start: %v", ctx.Err())
	}
	checkListeners(t, p)
	return lt
}

// readLines parses the session's stdout until EOF.
func (lt *Libtorrent) readLines(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var head struct {
			Type string `json:"type"`
		}
		line := sc.Bytes()
		if err := json.Unmarshal(line, &head); err != nil {
			lt.addError(fmt.Sprintf("bad line %q: %v", line, err))
			continue
		}
		switch head.Type {
		case "ready":
			closeOnce(lt.ready)
		case "done":
			closeOnce(lt.done)
		case "status":
			var st LibtorrentStatus
			if err := json.Unmarshal(line, &st); err != nil {
				lt.addError(fmt.Sprintf("bad status %q: %v", line, err))
				continue
			}
			lt.mu.Lock()
			lt.status, lt.haveStatus = st, true
			lt.mu.Unlock()
		case "ext_handshake":
			var hs ExtendedHandshake
			if err := json.Unmarshal(line, &hs); err != nil {
				lt.addError(fmt.Sprintf("bad handshake %q: %v", line, err))
				continue
			}
			lt.mu.Lock()
			lt.handshakes = append(lt.handshakes, hs)
			lt.mu.Unlock()
		case "error":
			var e struct {
				Message string `json:"message"`
			}
			_ = json.Unmarshal(line, &e)
			lt.addError(e.Message)
		}
	}
}

// closeOnce closes ch unless it is closed already. Only the reader
// goroutine closes these channels.
func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

func (lt *Libtorrent) addError(msg string) {
	lt.mu.Lock()
	lt.errs = append(lt.errs, msg)
	lt.mu.Unlock()
}

// Status returns the latest status line, and false before the first.
func (lt *Libtorrent) Status() (LibtorrentStatus, bool) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.status, lt.haveStatus
}

// ExtendedHandshakes returns the extended handshakes seen so far, both
// ways.
func (lt *Libtorrent) ExtendedHandshakes() []ExtendedHandshake {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return append([]ExtendedHandshake(nil), lt.handshakes...)
}

// Errors returns the errors the session reported (torrent, file and
// listen errors, bad lines).
func (lt *Libtorrent) Errors() []string {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return append([]string(nil), lt.errs...)
}

// errNotDone is returned by WaitDone when the session stops first.
var errNotDone = errors.New("torrent not finished")

// WaitDone waits until the torrent is finished (all wanted pieces; at once
// in seed mode). A share-mode torrent is never done.
func (lt *Libtorrent) WaitDone(ctx context.Context) error {
	select {
	case <-lt.done:
		return nil
	case <-lt.exited:
		select {
		case <-lt.done:
			return nil
		default:
		}
		return fmt.Errorf("libtorrent: %w: %w: %v", errNotDone, errExited, lt.waitErr)
	case <-ctx.Done():
		st, _ := lt.Status()
		return fmt.Errorf("libtorrent: %w (state %s, progress %.3f, %d peers): %w",
			errNotDone, st.State, st.Progress, st.NumPeers, ctx.Err())
	}
}

// ConnectPeer makes the session dial addr, and dial it again every 5 s
// while the torrent is not finished and not connected to it.
func (lt *Libtorrent) ConnectPeer(addr netip.AddrPort) error {
	lt.stdinMu.Lock()
	defer lt.stdinMu.Unlock()
	if _, err := fmt.Fprintf(lt.stdin, "connect %s\n", addr); err != nil {
		return fmt.Errorf("libtorrent: connect %s: %w", addr, err)
	}
	return nil
}

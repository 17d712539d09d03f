package btfs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Options configures a mount.
type Options struct {
	// ReadTimeout is the longest a read waits for its pieces before it
	// fails with EIO ([mount] read_timeout); default 60s.
	ReadTimeout time.Duration
	// MaxReadahead caps each handle's readahead in bytes; default 16 MiB.
	// Keep it well under the cache budget divided by the readers expected.
	MaxReadahead int64
	// Claims is told what each handle needs next (the repeater's swarm).
	Claims Claims
	Logger *slog.Logger
	// Debug logs every FUSE request.
	Debug bool
}

// Stats counts a mount's work.
type Stats struct {
	Reads     int64 // kernel reads served or failed
	BytesRead int64
	Timeouts  int64 // reads failed after ReadTimeout
	Open      int64 // file handles open now
}

// Mount is one torrent mounted read-only on a directory.
type Mount struct {
	dir string
	t   *torrent.Torrent
	o   Options
	log *slog.Logger

	server *fuse.Server
	ctx    context.Context // cancelled by Unmount: fails reads in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
	done   chan struct{} // closed when the server has stopped

	mtime     atomic.Int64 // every node's times, Unix seconds
	reads     atomic.Int64
	bytesRead atomic.Int64
	// ahead: the last read through this mount read ahead, so a seek may
	// find requests of pieces nobody wants in flight (handle.cancelStale).
	ahead    atomic.Bool
	timeouts atomic.Int64
	handles  atomic.Int64
}

// New mounts t on dir, which must be an existing directory, and serves it
// until Unmount (or an external fusermount3 -u). A dead mount left on dir
// by a crashed process is cleaned first.
func New(dir string, t *torrent.Torrent, o Options) (*Mount, error) {
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 60 * time.Second
	}
	if o.MaxReadahead <= 0 {
		o.MaxReadahead = 16 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("mount point %s: %w", dir, err)
	}
	if _, err := CleanStale(abs); err != nil {
		return nil, err
	}
	if st, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("mount point: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("mount point %s: not a directory", abs)
	}
	m := &Mount{dir: abs, t: t, o: o, log: o.Logger, done: make(chan struct{})}
	m.mtime.Store(time.Now().Unix())
	m.ctx, m.cancel = context.WithCancel(context.Background())
	long := 10 * time.Second
	var zero time.Duration
	opts := &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:        "btslave:" + t.InfoHash().HexString(),
			Name:          "btfs",
			DisableXAttrs: true,
			MaxReadAhead:  1 << 20,
			Debug:         o.Debug,
		},
		EntryTimeout:    &long,
		AttrTimeout:     &long,
		NegativeTimeout: &zero, // the tree appears once the metadata arrives
		UID:             uint32(os.Getuid()),
		GID:             uint32(os.Getgid()),
	}
	m.server, err = fs.Mount(abs, &root{m: m}, opts)
	if err != nil {
		m.cancel()
		m.wg.Wait()
		return nil, fmt.Errorf("mount %s: %w", abs, err)
	}
	go func() {
		m.server.Wait()
		close(m.done)
	}()
	m.log.Info("btfs: mounted", "dir", abs, "infohash", t.InfoHash().HexString(), "name", t.Name(),
		"read_timeout", o.ReadTimeout)
	return m, nil
}

// Dir is the mount point (absolute).
func (m *Mount) Dir() string { return m.dir }

// Torrent is the mounted torrent.
func (m *Mount) Torrent() *torrent.Torrent { return m.t }

// Done is closed once the filesystem is no longer served: after Unmount,
// or an unmount from outside.
func (m *Mount) Done() <-chan struct{} { return m.done }

// Stats returns the mount's counters.
func (m *Mount) Stats() Stats {
	return Stats{Reads: m.reads.Load(), BytesRead: m.bytesRead.Load(), Timeouts: m.timeouts.Load(), Open: m.handles.Load()}
}

// Unmount fails every read in flight with EIO, then unmounts: lazily
// (fusermount3 -u -z) when a process still holds a file open, so that the
// mount point is free at once. It is idempotent.
func (m *Mount) Unmount() error {
	m.once.Do(func() {
		m.cancel()
		err := m.server.Unmount()
		if err != nil {
			m.log.Info("btfs: mount busy, unmounting lazily", "dir", m.dir, "err", err)
			if lerr := lazyUnmount(m.dir); lerr != nil {
				m.err = fmt.Errorf("unmount %s: %w (lazy: %w)", m.dir, err, lerr)
			}
		}
		m.wg.Wait()
		if m.err == nil {
			m.log.Info("btfs: unmounted", "dir", m.dir, "reads", m.reads.Load(), "bytes_read", m.bytesRead.Load())
		}
	})
	return m.err
}

// LazyUnmount detaches the mount on dir at once (fusermount3 -u -z),
// whoever serves it: the way to end a foreground mount from outside, or a
// dead one.
func LazyUnmount(dir string) error { return lazyUnmount(dir) }

// lazyUnmount detaches the mount on dir now; the kernel ends it when its
// last open file is closed.
func lazyUnmount(dir string) error {
	out, err := exec.Command(fusermount(), "-u", "-z", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -u -z: %w: %s", fusermount(), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func fusermount() string {
	if p, err := exec.LookPath("fusermount3"); err == nil {
		return p
	}
	return "fusermount"
}

// CleanStale unmounts (lazily) every dead FUSE mount on dir: one whose
// server is gone, as a crashed daemon leaves it, so that every request
// fails with ENOTCONN. It asks with statfs, which the kernel always sends
// to the server (a stat may be answered from the attribute cache). A live
// mount is left alone. It reports whether it cleaned.
func CleanStale(dir string) (bool, error) {
	cleaned := false
	for range 8 { // dead mounts may be stacked
		if !isMountPoint(dir) || !IsDead(dir) {
			return cleaned, nil
		}
		if err := lazyUnmount(dir); err != nil {
			return cleaned, fmt.Errorf("clean dead mount: %w", err)
		}
		cleaned = true
	}
	return cleaned, nil
}

// IsDead reports whether dir is a FUSE mount whose server is gone.
func IsDead(dir string) bool {
	var st syscall.Statfs_t
	err := syscall.Statfs(dir, &st)
	return errors.Is(err, syscall.ENOTCONN) || errors.Is(err, syscall.ECONNABORTED)
}

// IsMounted reports whether dir is a mount point in /proc/self/mountinfo.
func IsMounted(dir string) bool { return isMountPoint(dir) }

func isMountPoint(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == dir {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

package btfs

import (
	"context"
	"strings"
	"syscall"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// StatusFile is the one file in the root of a mount whose torrent has no
// metadata yet.
const StatusFile = ".btslave-status"

// root is the mount's root directory. Its children are added once the
// torrent's metadata is known (at once, or from a goroutine waiting for
// it), and are persistent: every lookup and stat is answered from memory.
type root struct {
	fs.Inode
	m *Mount
}

var (
	_ fs.NodeOnAdder   = (*root)(nil)
	_ fs.NodeGetattrer = (*root)(nil)
)

func (r *root) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = fuse.S_IFDIR | 0o555
	r.m.setTimes(&out.Attr)
	return 0
}

// OnAdd builds the tree, or shows StatusFile until the metadata arrives.
func (r *root) OnAdd(ctx context.Context) {
	if r.m.t.Info() != nil {
		r.build(ctx)
		return
	}
	msg := []byte("btslave: waiting for the torrent's metadata (" + r.m.t.InfoHash().HexString() +
		") from its peers; the files appear here once it arrives\n")
	st := r.NewPersistentInode(ctx, &fs.MemRegularFile{Data: msg, Attr: fuse.Attr{Mode: 0o444}}, fs.StableAttr{})
	r.AddChild(StatusFile, st, true)
	r.m.wg.Add(1)
	go func() {
		defer r.m.wg.Done()
		select {
		case <-r.m.t.GotInfo():
		case <-r.m.ctx.Done():
			return
		}
		r.build(context.Background())
		r.RmChild(StatusFile)
		// The kernel keeps entries for the long EntryTimeout: tell it.
		r.NotifyEntry(StatusFile)
		r.m.log.Info("btfs: metadata arrived, files shown", "dir", r.m.dir, "files", len(r.m.t.Files()))
	}()
}

// build adds a node for every file of the torrent (padding files left
// out), under directories named after its path: Name/path/to/file for a
// multi-file torrent, Name for a single file, as a client saves them.
func (r *root) build(ctx context.Context) {
	info := r.m.t.Info()
	if mi := r.m.t.Metainfo(); mi.CreationDate > 0 {
		r.m.mtime.Store(mi.CreationDate)
	}
	dirs := map[string]*fs.Inode{"": &r.Inode}
	var dirOf func(path []string) *fs.Inode
	dirOf = func(path []string) *fs.Inode {
		key := strings.Join(path, "/")
		if d, ok := dirs[key]; ok {
			return d
		}
		parent := dirOf(path[:len(path)-1])
		d := parent.NewPersistentInode(ctx, &dir{m: r.m}, fs.StableAttr{Mode: fuse.S_IFDIR})
		parent.AddChild(path[len(path)-1], d, true)
		dirs[key] = d
		return d
	}
	for _, f := range r.m.t.Files() {
		fi := f.FileInfo()
		if strings.Contains(fi.Attr, "p") {
			continue // BEP 47 padding
		}
		path := append([]string{info.BestName()}, fi.BestPath()...)
		if !validPath(path) {
			r.m.log.Warn("btfs: file with an unsafe path left out", "path", f.DisplayPath())
			continue
		}
		parent := dirOf(path[:len(path)-1])
		n := parent.NewPersistentInode(ctx, &file{m: r.m, f: f}, fs.StableAttr{Mode: fuse.S_IFREG})
		parent.AddChild(path[len(path)-1], n, true)
	}
}

// validPath rejects components a kernel would refuse or misread.
func validPath(path []string) bool {
	for _, c := range path {
		if c == "" || c == "." || c == ".." || strings.ContainsAny(c, "/\x00") {
			return false
		}
	}
	return true
}

// dir is a directory of the torrent.
type dir struct {
	fs.Inode
	m *Mount
}

var _ fs.NodeGetattrer = (*dir)(nil)

func (d *dir) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = fuse.S_IFDIR | 0o555
	d.m.setTimes(&out.Attr)
	return 0
}

// file is a file of the torrent.
type file struct {
	fs.Inode
	m *Mount
	f *torrent.File
}

var (
	_ fs.NodeGetattrer = (*file)(nil)
	_ fs.NodeOpener    = (*file)(nil)
)

func (n *file) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = fuse.S_IFREG | 0o444
	out.Size = uint64(n.f.Length())
	out.Blksize = 1 << 16
	out.Blocks = (out.Size + 511) / 512
	n.m.setTimes(&out.Attr)
	return 0
}

// Open gives each opener its own reader. The data never changes, so the
// kernel may keep what it has cached across opens.
func (n *file) Open(_ context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	h, err := n.m.newHandle(n.f)
	if err != 0 {
		return nil, 0, err
	}
	return h, fuse.FOPEN_KEEP_CACHE, 0
}

func (m *Mount) setTimes(a *fuse.Attr) {
	t := time.Unix(m.mtime.Load(), 0)
	a.SetTimes(&t, &t, &t)
}

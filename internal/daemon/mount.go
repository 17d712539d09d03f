package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/anacrolix/torrent/metainfo"
	bolt "go.etcd.io/bbolt"

	"github.com/btslave/btslave/btfs"
	"github.com/btslave/btslave/internal/api"
)

// bucketMounts holds the daemon's mounts by directory, so that a restart
// (or a crash) mounts them again. The bucket is made on first use rather
// than by a store migration: it holds nothing older versions read.
var bucketMounts = []byte("mounts")

// mountRecord is one entry of bucketMounts.
type mountRecord struct {
	swarmRecord
	Dir string `json:"dir"`
}

// mountSet is the daemon's running mounts.
type mountSet struct {
	mu sync.Mutex
	by map[string]*mounted // by directory
}

// mounted is one recorded mount: served (m set) or not (err says why).
type mounted struct {
	rec    mountRecord
	ih     metainfo.Hash
	m      *btfs.Mount
	joined bool // the mount joined the swarm: it leaves it on unmount
	err    string
}

// Mount implements api.Mounter: it joins the torrent's swarm (or uses the
// one served already), mounts it on req.Dir and records the mount.
func (a *App) Mount(_ context.Context, req api.MountRequest) (api.Mount, error) {
	dir := filepath.Clean(strings.TrimSpace(req.Dir))
	if !filepath.IsAbs(dir) {
		return api.Mount{}, fmt.Errorf("%w: mount point %q must be an absolute path", api.ErrBadRequest, req.Dir)
	}
	rec, err := recordOf(req.RepeatRequest)
	if err != nil {
		return api.Mount{}, err
	}
	mr := mountRecord{swarmRecord: rec, Dir: dir}
	a.mounts.mu.Lock()
	if a.mounts.by == nil {
		a.mounts.by = map[string]*mounted{}
	}
	if _, dup := a.mounts.by[dir]; dup {
		a.mounts.mu.Unlock()
		return api.Mount{}, fmt.Errorf("%w: %s is mounted already ('btslave umount %s' first)", api.ErrBadRequest, dir, dir)
	}
	a.mounts.by[dir] = &mounted{rec: mr, err: "mounting"} // hold the directory
	a.mounts.mu.Unlock()
	mt, err := a.startMount(mr)
	a.mounts.mu.Lock()
	if err != nil {
		delete(a.mounts.by, dir)
	} else {
		a.mounts.by[dir] = mt
	}
	a.mounts.mu.Unlock()
	if err != nil {
		return api.Mount{}, err
	}
	val, _ := json.Marshal(mr)
	if err := a.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketMounts)
		if err != nil {
			return err
		}
		return b.Put([]byte(dir), val)
	}); err != nil {
		a.stopMount(mt)
		a.mounts.mu.Lock()
		delete(a.mounts.by, dir)
		a.mounts.mu.Unlock()
		return api.Mount{}, fmt.Errorf("record mount: %w", err)
	}
	return a.mountStatus(mt), nil
}

// startMount joins the record's swarm when it is not served yet and
// mounts it; a dead mount a crash left on the directory is cleaned first
// (btfs.New).
func (a *App) startMount(rec mountRecord) (*mounted, error) {
	spec, err := rec.spec()
	if err != nil {
		return nil, err
	}
	mt := &mounted{rec: rec, ih: spec.InfoHash}
	sw := a.rep.Swarm(spec.InfoHash)
	if sw == nil {
		sw, err = a.joinForOwner(spec)
		if err != nil {
			return nil, fmt.Errorf("join the swarm to mount it: %w", err)
		}
		mt.joined = true
	}
	// A reader downloads: say so (no upload_only) while mounted.
	sw.SetPartialSeed(false)
	mc := a.cfg.Mount
	m, err := btfs.New(rec.Dir, sw.Torrent(), btfs.Options{
		ReadTimeout:  mc.ReadTimeout.Std(),
		MaxReadahead: int64(mc.MaxReadahead),
		Claims:       sw,
		Logger:       a.log.With("component", "btfs"),
	})
	if err != nil {
		if mt.joined {
			a.rep.Leave(spec.InfoHash)
		}
		return nil, fmt.Errorf("%w: %w", api.ErrBadRequest, err)
	}
	mt.m = m
	go a.watchMount(mt)
	a.log.Info("mounted", "dir", rec.Dir, "infohash", mt.ih.HexString(), "name", sw.Torrent().Name())
	return mt, nil
}

// watchMount forgets a mount unmounted from outside (fusermount3 -u):
// the owner ended it.
func (a *App) watchMount(mt *mounted) {
	<-mt.m.Done()
	a.mounts.mu.Lock()
	cur := a.mounts.by[mt.rec.Dir]
	a.mounts.mu.Unlock()
	if cur != mt {
		return // Unmount or the daemon's stop ended it
	}
	a.log.Warn("mount ended from outside; forgotten", "dir", mt.rec.Dir)
	_ = a.Unmount(context.Background(), mt.rec.Dir)
}

// stopMount unmounts and leaves the swarm the mount joined, unless the
// owner serves it ("btslave repeat") or another mount reads it.
func (a *App) stopMount(mt *mounted) {
	if mt.m == nil {
		return
	}
	if err := mt.m.Unmount(); err != nil {
		a.log.Warn("unmount", "dir", mt.rec.Dir, "err", err)
	}
	if !mt.joined {
		return
	}
	a.mounts.mu.Lock()
	for _, o := range a.mounts.by {
		if o != mt && o.ih == mt.ih && o.m != nil {
			a.mounts.mu.Unlock()
			return
		}
	}
	a.mounts.mu.Unlock()
	repeated := false
	_ = a.db.View(func(tx *bolt.Tx) error {
		repeated = tx.Bucket(bucketTorrents).Get(mt.ih[:]) != nil
		return nil
	})
	if sw := a.rep.Swarm(mt.ih); sw != nil && repeated {
		sw.SetPartialSeed(true)
		return
	}
	a.rep.Leave(mt.ih)
}

// Unmount implements api.Mounter: it unmounts dir and forgets the mount.
func (a *App) Unmount(_ context.Context, dir string) error {
	dir = filepath.Clean(strings.TrimSpace(dir))
	a.mounts.mu.Lock()
	mt, ok := a.mounts.by[dir]
	if ok && mt.err == "mounting" && mt.m == nil {
		ok = false // Mount holds the directory
	}
	if ok {
		delete(a.mounts.by, dir) // before the unmount: watchMount then leaves it
	}
	a.mounts.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: nothing is mounted on %s by this daemon", api.ErrBadRequest, dir)
	}
	a.stopMount(mt)
	if err := a.db.Update(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMounts); b != nil {
			return b.Delete([]byte(dir))
		}
		return nil
	}); err != nil {
		return fmt.Errorf("forget mount %s: %w", dir, err)
	}
	a.log.Info("unmounted", "dir", dir)
	return nil
}

// Mounts implements api.Mounter.
func (a *App) Mounts(context.Context) []api.Mount {
	a.mounts.mu.Lock()
	all := make([]*mounted, 0, len(a.mounts.by))
	for _, mt := range a.mounts.by {
		all = append(all, mt)
	}
	a.mounts.mu.Unlock()
	out := make([]api.Mount, 0, len(all))
	for _, mt := range all {
		out = append(out, a.mountStatus(mt))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dir < out[j].Dir })
	return out
}

func (a *App) mountStatus(mt *mounted) api.Mount {
	out := api.Mount{Dir: mt.rec.Dir, InfoHash: mt.ih.HexString(), Mounted: mt.rec.Added, State: api.MountFailed, Error: mt.err}
	if mt.m != nil {
		out.Error = ""
		out.State = api.MountWaiting
		if t := mt.m.Torrent(); t.Info() != nil {
			out.Name = t.Name()
			out.State = api.MountServing
		}
		st := mt.m.Stats()
		out.Reads, out.BytesRead, out.Timeouts, out.Open = st.Reads, st.BytesRead, st.Timeouts, st.Open
	}
	return out
}

// remount mounts every recorded mount again at start; one that fails is
// logged and kept, with its error, until the owner unmounts it.
func (a *App) remount() {
	var recs []mountRecord
	_ = a.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMounts)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var rec mountRecord
			if err := json.Unmarshal(v, &rec); err != nil || rec.Dir != string(k) {
				a.log.Warn("bad mount record; left in place", "dir", string(k), "err", err)
				return nil
			}
			recs = append(recs, rec)
			return nil
		})
	})
	a.mounts.mu.Lock()
	if a.mounts.by == nil {
		a.mounts.by = map[string]*mounted{}
	}
	a.mounts.mu.Unlock()
	for _, rec := range recs {
		mt, err := a.startMount(rec)
		if err != nil {
			a.log.Warn("remount failed; kept until 'btslave umount'", "dir", rec.Dir, "err", err)
			mt = &mounted{rec: rec, err: err.Error()}
			if spec, serr := rec.spec(); serr == nil {
				mt.ih = spec.InfoHash
			}
		}
		a.mounts.mu.Lock()
		a.mounts.by[rec.Dir] = mt
		a.mounts.mu.Unlock()
	}
}

// unmountAll unmounts every mount at stop, keeping the records so that
// the next start mounts them again.
func (a *App) unmountAll() {
	a.mounts.mu.Lock()
	all := a.mounts.by
	a.mounts.by = nil
	a.mounts.mu.Unlock()
	for _, mt := range all {
		if mt.m != nil {
			if err := mt.m.Unmount(); err != nil {
				a.log.Warn("unmount at stop", "dir", mt.rec.Dir, "err", err)
			}
		}
	}
}

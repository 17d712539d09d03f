package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/buildinfo"
	"github.com/btslave/btslave/internal/friendsvc"
	"github.com/btslave/btslave/repeater/announce"
)

// A friend's published torrent that we keep as its second everseed: the
// .torrent is DATA_DIR/kept/<infohash>.torrent, the data under
// DATA_DIR/kept/<infohash>/, downloaded in full by the client (anacrolix
// verifies every piece and keeps the completion across restarts) and
// then seeded. [friends] everseed_budget bounds their total size.
type keptSeed struct {
	ih     metainfo.Hash
	name   string
	size   int64
	t      *torrent.Torrent
	cancel context.CancelFunc
	done   chan struct{}
}

func (a *App) keptDir() string { return filepath.Join(a.cfg.DataDir, "kept") }

// Kept implements friendsvc.Keeper.
func (a *App) Kept(infoHash string) (total int64, has bool) {
	if a.pub == nil {
		return 0, false
	}
	a.pub.mu.Lock()
	defer a.pub.mu.Unlock()
	for ih, k := range a.pub.kept {
		total += k.size
		has = has || ih.HexString() == strings.ToLower(infoHash)
	}
	return total, has
}

// Keep implements friendsvc.Keeper: it checks the metainfo against the
// infohash and size asked, stores it and starts the download.
func (a *App) Keep(_ context.Context, r friends.EverseedRequest) (string, error) {
	if a.pub == nil {
		return "", errors.New("the daemon is starting")
	}
	mi, err := metainfo.Load(bytes.NewReader(r.Metainfo))
	if err != nil {
		return "", fmt.Errorf("metainfo: %w", err)
	}
	if got := mi.HashInfoBytes().HexString(); got != r.InfoHash {
		return "", fmt.Errorf("metainfo is %s, not %s", got, r.InfoHash)
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return "", fmt.Errorf("metainfo: %w", err)
	}
	if size := dataSize(&info); size > r.Size {
		return "", fmt.Errorf("the torrent holds %d B, not the %d B asked", size, r.Size)
	}
	if err := os.MkdirAll(a.keptDir(), 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(a.keptDir(), r.InfoHash+".torrent")
	if err := os.WriteFile(p+".tmp", r.Metainfo, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return "", err
	}
	var seed []netip.AddrPort
	if ap, err := netip.ParseAddrPort(r.Seed); err == nil {
		seed = append(seed, ap)
	}
	if err := a.keep(mi, seed); err != nil {
		os.Remove(p)
		return "", err
	}
	return info.BestName(), nil
}

// dataSize is the torrent's bytes without BEP 47 padding files.
func dataSize(info *metainfo.Info) int64 {
	var n int64
	for _, f := range info.UpvertedFiles() {
		if !strings.Contains(f.Attr, "p") {
			n += f.Length
		}
	}
	return n
}

// keep adds a kept torrent to the client, downloading what it lacks from
// seed and the torrent's trackers, and announces it.
func (a *App) keep(mi *metainfo.MetaInfo, seed []netip.AddrPort) error {
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return err
	}
	ih := mi.HashInfoBytes()
	spec, err := torrent.TorrentSpecFromMetaInfoErr(mi)
	if err != nil {
		return err
	}
	spec.Storage = storage.NewFileOpts(storage.NewFileClientOpts{ClientBaseDir: filepath.Join(a.keptDir(), ih.HexString())})
	t, _, err := a.client.AddTorrentSpec(spec)
	if err != nil {
		return fmt.Errorf("add to the client: %w", err)
	}
	t.DownloadAll()
	t.AddPeers(peerInfos(seed, "everseed"))
	k := &keptSeed{ih: ih, name: info.BestName(), size: dataSize(&info), t: t, done: make(chan struct{})}
	an, err := announce.New(announce.Options{
		InfoHash: ih, PeerID: a.client.PeerID(), Port: a.client.LocalPort(),
		Trackers: mi.UpvertedAnnounceList(),
		Stats: func() (up, down, left int64) {
			ts := t.Stats()
			return ts.BytesWrittenData.Int64(), ts.BytesReadData.Int64(), t.BytesMissing()
		},
		OnPeers:   func(addrs []netip.AddrPort) { t.AddPeers(peerInfos(addrs, "tracker")) },
		LocalIP:   listenIP(a.cfg.Peer.Listen),
		UserAgent: buildinfo.ClientName(),
		Logger:    a.pub.log.With("infohash", ih.HexString(), "kept", true),
	})
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	if err != nil {
		close(k.done)
	} else {
		go func() {
			defer close(k.done)
			an.Run(ctx)
		}()
	}
	a.pub.mu.Lock()
	a.pub.kept[ih] = k
	a.pub.mu.Unlock()
	a.pub.log.Info("keeping a friend's torrent as its second everseed", "name", k.name, "infohash", ih.HexString(), "size", k.size)
	return nil
}

func peerInfos(addrs []netip.AddrPort, source string) []torrent.PeerInfo {
	ps := make([]torrent.PeerInfo, len(addrs))
	for i, ap := range addrs {
		ps[i] = torrent.PeerInfo{Addr: net.TCPAddrFromAddrPort(ap), Source: torrent.PeerSource(source)}
	}
	return ps
}

// resumeKept re-adds the kept torrents at start; the client's piece
// completion says what is already on disk.
func (a *App) resumeKept() {
	ms, _ := filepath.Glob(filepath.Join(a.keptDir(), "*.torrent"))
	for _, p := range ms {
		mi, err := metainfo.LoadFromFile(p)
		if err == nil {
			err = a.keep(mi, nil)
		}
		if err != nil {
			a.pub.log.Warn("cannot resume a kept torrent", "file", p, "err", err)
		}
	}
}

// keptServing is whether the kept torrent ih is complete, so that the
// wire layer lets every request for it through.
func (p *publisher) keptServing(ih metainfo.Hash) bool {
	k := p.kept[ih]
	return k != nil && k.t.Info() != nil && k.t.Complete().Bool()
}

// stopKept stops the kept torrents' announcers at shutdown.
func (a *App) stopKept() []chan struct{} {
	var dones []chan struct{}
	for _, k := range a.pub.kept {
		k.cancel()
		dones = append(dones, k.done)
	}
	return dones
}

// AskEverseed asks the friend to be a second everseed of the published
// torrent ih (POST /api/v1/published/{ih}/everseed); the answer is
// recorded in the ledger on both sides.
func (a *App) AskEverseed(ctx context.Context, ih, friend string) (api.EverseedReply, error) {
	if a.friends == nil {
		return api.EverseedReply{}, fmt.Errorf("%w: [friends] is off", api.ErrBadRequest)
	}
	id, err := friends.IDFromString(friend)
	if err != nil {
		return api.EverseedReply{}, fmt.Errorf("%w: friend %q: %w", api.ErrBadRequest, friend, err)
	}
	var key []byte
	fs, err := a.friends.book.List()
	if err != nil {
		return api.EverseedReply{}, err
	}
	for _, f := range fs {
		if f.ID() == id {
			key = f.Key
		}
	}
	if key == nil {
		return api.EverseedReply{}, fmt.Errorf("%w: %s is not a friend", api.ErrBadRequest, friend)
	}
	rec, ok := a.pub.reg.Get(ih)
	if !ok {
		return api.EverseedReply{}, fmt.Errorf("%w: %s is not published", api.ErrBadRequest, ih)
	}
	b, err := a.pub.reg.TorrentFile(rec.InfoHash)
	if err != nil {
		return api.EverseedReply{}, err
	}
	var n [8]byte
	rand.Read(n[:])
	req := friends.EverseedRequest{ID: binary.BigEndian.Uint64(n[:]), InfoHash: rec.InfoHash, Metainfo: b, Size: rec.Size}
	if ap := a.selfAddr(); ap.IsValid() {
		req.Seed = ap.String()
	}
	c, err := a.friends.dial(ctx, key)
	if err != nil {
		return api.EverseedReply{}, fmt.Errorf("dial friend %s: %w", id.Short(), err)
	}
	if cl, ok := c.(interface{ Close() error }); ok {
		defer cl.Close()
	}
	rep, err := friendsvc.AskEverseed(ctx, a.friends.ledger, c, key, req, rec.Name)
	if err != nil {
		return api.EverseedReply{}, err
	}
	return api.EverseedReply{Friend: id.String(), InfoHash: rec.InfoHash, Accepted: rep.Accept, Reason: rep.Reason}, nil
}

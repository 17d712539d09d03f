package cache

import (
	"fmt"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// Test hooks for the external tests.

// SetNow replaces the clock used for staleness.
func (c *Cache) SetNow(now func() time.Time) {
	c.mu.Lock()
	c.now = now
	c.mu.Unlock()
}

// SetCheck installs a hook that checks the accounting invariants under the
// lock at every unlock and wait, and reports violations to fail.
func (c *Cache) SetCheck(fail func(error)) {
	c.mu.Lock()
	c.testHook = func() {
		if err := c.checkLocked(false); err != nil {
			fail(err)
		}
	}
	c.mu.Unlock()
}

// Check checks every invariant; quiescent means no operation is in
// progress, so per-piece sums must match exactly.
func (c *Cache) Check() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checkLocked(true)
}

// PieceState reports whether the piece has data and whether it is lost.
func (c *Cache) PieceState(ih metainfo.Hash, i int) (held, lost bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.lookup(ih, i)
	if p == nil {
		return false, false
	}
	return p.h != nil, p.lost
}

// Reclaimable reports whether reclaiming could free anything right now
// other than the given piece's data, which its own operation may not evict.
func (c *Cache) Reclaimable(ih metainfo.Hash, i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	var self *held
	if p := c.lookup(ih, i); p != nil {
		self = p.h
	}
	if c.freeBytes > 0 {
		return true
	}
	now := c.nowNano()
	for h := c.lru.tail; h != nil; h = c.lru.prev(h) {
		if h != self && !busy(h) && (h.complete || now-h.lastWrite >= int64(staleAfter)) {
			return true
		}
	}
	for h := c.inflated.tail; h != nil; h = c.inflated.prev(h) {
		if h != self && h.refs == 0 && !h.excl {
			return true
		}
	}
	return false
}

func (c *Cache) checkLocked(quiescent bool) error {
	if c.held > c.budget {
		return fmt.Errorf("held %d > budget %d", c.held, c.budget)
	}
	if c.held != c.stored+c.freeBytes+c.scratch {
		return fmt.Errorf("held %d != stored %d + free %d + scratch %d", c.held, c.stored, c.freeBytes, c.scratch)
	}
	if c.stored < 0 || c.freeBytes < 0 || c.scratch < 0 {
		return fmt.Errorf("negative: stored %d free %d scratch %d", c.stored, c.freeBytes, c.scratch)
	}
	var free int64
	for l, bufs := range c.freeBufs {
		for _, b := range bufs {
			if int64(len(b)) != l {
				return fmt.Errorf("free list %d holds a buffer of %d", l, len(b))
			}
			free += l
		}
	}
	for l, files := range c.freeFiles {
		free += l * int64(len(files))
	}
	if free != c.freeBytes {
		return fmt.Errorf("free list sums %d, counted %d", free, c.freeBytes)
	}
	if c.pinned > c.budget-c.budget/4 {
		return fmt.Errorf("pinned %d > 3/4 of %d", c.pinned, c.budget)
	}
	if !quiescent {
		return nil
	}
	var stored, pinned, inflated int64
	var nComplete, nPartial, nLRU, nInflated, nFds int
	for ih, t := range c.torrents {
		if t.ih != ih || t.detached {
			return fmt.Errorf("torrent %s: bad map entry", ih.HexString())
		}
		var tStored int64
		var tHeld, tPinned int
		for i := range t.pieces {
			p := &t.pieces[i]
			if p.pinned {
				pinned += p.length
				tPinned++
			}
			h := p.h
			if h == nil {
				continue
			}
			tHeld++
			if h.p != p {
				return fmt.Errorf("%v: held back pointer", p)
			}
			if h.refs != 0 || h.excl || h.inflating || h.compressing {
				return fmt.Errorf("%v: busy while quiescent: refs %d excl %v inflating %v compressing %v",
					p, h.refs, h.excl, h.inflating, h.compressing)
			}
			tStored += h.size
			if h.complete {
				nComplete++
			} else {
				nPartial++
				if h.compressed {
					return fmt.Errorf("%v: partial and compressed", p)
				}
			}
			if h.links[lruList].in == p.pinned {
				return fmt.Errorf("%v: in LRU %v, pinned %v", p, h.links[lruList].in, p.pinned)
			}
			if h.links[lruList].in {
				nLRU++
			}
			if h.plain != nil {
				if !h.compressed || int64(len(h.plain)) != p.length || !h.links[inflatedList].in {
					return fmt.Errorf("%v: bad decompressed copy", p)
				}
				inflated += p.length
				nInflated++
			}
			if h.links[fdList].in != (h.f != nil) {
				return fmt.Errorf("%v: fd list membership", p)
			}
			if h.f != nil {
				nFds++
			}
			switch {
			case c.dir != "":
				if h.path == "" || h.buf != nil {
					return fmt.Errorf("%v: file backend piece without path", p)
				}
			case h.compressed:
				if int64(len(h.buf)) != h.size || h.size >= p.length {
					return fmt.Errorf("%v: compressed buffer %d, size %d, length %d", p, len(h.buf), h.size, p.length)
				}
			default:
				if int64(len(h.buf)) != p.length || h.size != p.length {
					return fmt.Errorf("%v: plain buffer %d, size %d, length %d", p, len(h.buf), h.size, p.length)
				}
			}
		}
		if tStored != t.stored || tHeld != t.nHeld || tPinned != t.nPinned {
			return fmt.Errorf("torrent %s: stored %d/%d held %d/%d pinned %d/%d", ih.HexString(),
				tStored, t.stored, tHeld, t.nHeld, tPinned, t.nPinned)
		}
		if t.open == 0 && tHeld == 0 && tPinned == 0 {
			return fmt.Errorf("torrent %s: closed and empty but kept", ih.HexString())
		}
		stored += tStored
	}
	if stored != c.stored {
		return fmt.Errorf("pieces store %d, counted %d", stored, c.stored)
	}
	if inflated != c.inflatedBytes || inflated+c.compBytes != c.scratch {
		return fmt.Errorf("decompressed copies %d, counted %d, scratch %d", inflated, c.inflatedBytes, c.scratch)
	}
	if pinned != c.pinned {
		return fmt.Errorf("pinned %d, counted %d", pinned, c.pinned)
	}
	if nComplete != c.nComplete || nPartial != c.nPartial {
		return fmt.Errorf("complete %d/%d partial %d/%d", nComplete, c.nComplete, nPartial, c.nPartial)
	}
	if nLRU != c.lru.len || nInflated != c.inflated.len || nFds != c.fds.len {
		return fmt.Errorf("lists: lru %d/%d inflated %d/%d fds %d/%d", nLRU, c.lru.len, nInflated, c.inflated.len, nFds, c.fds.len)
	}
	if nFds > maxOpenFiles {
		return fmt.Errorf("%d open files > %d", nFds, maxOpenFiles)
	}
	return nil
}

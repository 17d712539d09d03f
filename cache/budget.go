package cache

import (
	"context"
	"log/slog"
)

// Budget accounting and eviction. Every function here runs with c.mu held.
//
// held only grows in reserve, takeBuf and takeFile, and only after
// reclaimOne has made room, so held <= budget holds whenever the lock is
// free. Files of evicted pieces are removed after unlocking, but by the
// goroutine that evicted them, before it writes into the room it made.

// reserve charges n bytes to *acct, reclaiming until they fit. It reports
// false, charging nothing, when nothing more can be reclaimed.
func (c *Cache) reserve(n int64, acct *int64) bool {
	for c.held+n > c.budget {
		if !c.reclaimOne(0, false) {
			return false
		}
	}
	c.held += n
	*acct += n
	return true
}

// release returns n bytes charged to *acct.
func (c *Cache) release(n int64, acct *int64) {
	c.held -= n
	*acct -= n
}

// Values of keep for dropHeld and reclaimOne, besides a piece length
// (under pressure: keep only what the caller can take).
const (
	keepAny  = -1 // idle buffers and files go to the free lists
	keepNone = -2 // release everything (DropTorrent, Close)
)

// takeBuf charges l bytes to *acct for a memory buffer of that length. It
// returns a recycled buffer, or nil when the caller must allocate one (after
// unlocking). It reports false when the budget cannot make room.
func (c *Cache) takeBuf(l int64, acct *int64) ([]byte, bool) {
	for {
		if b := c.popFreeBuf(l); b != nil {
			c.freeBytes -= l
			*acct += l
			return b, true
		}
		if c.held+l <= c.budget {
			c.held += l
			*acct += l
			return nil, true
		}
		if !c.reclaimOne(l, false) {
			return nil, false
		}
	}
}

// takeFile is takeBuf for piece files: it returns the path of an idle file
// of length l, or "" when the caller must create one.
func (c *Cache) takeFile(l int64) (string, bool) {
	for {
		if files := c.freeFiles[l]; len(files) > 0 {
			path := files[len(files)-1]
			c.freeFiles[l] = files[:len(files)-1]
			c.freeBytes -= l
			c.stored += l
			return path, true
		}
		if c.held+l <= c.budget {
			c.held += l
			c.stored += l
			return "", true
		}
		if !c.reclaimOne(l, true) {
			return "", false
		}
	}
}

// reclaimOne frees something: an idle buffer or file, then an idle
// decompressed copy, then the least recently useful evictable piece. What
// the caller can take (a buffer, or a file if file is set, of length keep)
// goes to the free lists; the rest is dropped. It reports false when there
// is nothing to reclaim.
func (c *Cache) reclaimOne(keep int64, file bool) bool {
	for l, bufs := range c.freeBufs {
		if (l == keep && !file) || len(bufs) == 0 {
			continue
		}
		c.freeBufs[l] = bufs[:len(bufs)-1]
		bufs[len(bufs)-1] = nil
		c.release(l, &c.freeBytes)
		return true
	}
	for l, files := range c.freeFiles {
		if (l == keep && file) || len(files) == 0 {
			continue
		}
		c.freeFiles[l] = files[:len(files)-1]
		c.release(l, &c.freeBytes)
		c.pending = append(c.pending, pendingOp{path: files[len(files)-1]})
		return true
	}
	for h := c.inflated.tail; h != nil; h = c.inflated.prev(h) {
		if h.refs == 0 && !h.excl {
			c.releasePlain(h, keep)
			return true
		}
	}
	if h := c.victim(); h != nil {
		c.evict(h, keep)
		return true
	}
	return false
}

// victim returns the least recently useful piece that may be evicted: not
// pinned (pinned pieces are not in the list), no I/O in flight, and complete
// or without a write for staleAfter.
func (c *Cache) victim() *held {
	now := c.nowNano()
	for h := c.lru.tail; h != nil; h = c.lru.prev(h) {
		if busy(h) {
			continue
		}
		if !h.complete && now-h.lastWrite < int64(staleAfter) {
			continue
		}
		return h
	}
	return nil
}

// evict drops h's data as an eviction: counted, reported to OnEvict, and a
// partial piece is marked lost.
func (c *Cache) evict(h *held, keep int64) {
	p := h.p
	if !h.complete {
		p.lost = true
	}
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		// Guarded: the arguments would allocate even when disabled.
		c.log.Debug("cache: evicting", "piece", p, "complete", h.complete, "size", h.size)
	}
	c.evictions++
	c.dropHeld(h, keep)
	c.queueEvent(p)
}

// dropHeld releases h and everything it charges. Plain memory buffers and
// piece files of length keep (any length if keep is keepAny) go to the free
// lists.
func (c *Cache) dropHeld(h *held, keep int64) {
	p, t := h.p, h.p.t
	if h.plain != nil {
		c.releasePlain(h, keep)
	}
	reuse := !h.compressed && (keep == keepAny || keep == p.length)
	switch {
	case h.buf != nil && reuse:
		c.stored -= h.size
		c.pushFreeBuf(h.buf)
	case h.path != "" && reuse:
		c.stored -= h.size
		c.freeFiles[h.size] = append(c.freeFiles[h.size], h.path)
		c.freeBytes += h.size
		if h.f != nil {
			c.pending = append(c.pending, pendingOp{f: h.f})
		}
	default:
		c.release(h.size, &c.stored)
		if h.f != nil || h.path != "" {
			c.pending = append(c.pending, pendingOp{f: h.f, path: h.path})
		}
	}
	c.fds.remove(h)
	if h.complete {
		c.nComplete--
	} else {
		c.nPartial--
	}
	t.stored -= h.size
	t.nHeld--
	c.lru.remove(h)
	p.h = nil
	*h = held{}
	c.spare = append(c.spare, h)
	c.maybeForget(t)
}

// install makes h (size l, partial) p's data. The caller charged l to stored.
func (c *Cache) install(p *piece, l int64) *held {
	var h *held
	if n := len(c.spare); n > 0 {
		h = c.spare[n-1]
		c.spare = c.spare[:n-1]
	} else {
		h = new(held)
	}
	h.p = p
	h.size = l
	h.lastWrite = c.nowNano()
	p.h = h
	p.t.stored += l
	p.t.nHeld++
	c.nPartial++
	if !p.pinned {
		c.lru.pushFront(h)
	}
	return h
}

// releasePlain drops the decompressed copy of a compressed piece.
func (c *Cache) releasePlain(h *held, keep int64) {
	l := int64(len(h.plain))
	c.inflated.remove(h)
	c.inflatedBytes -= l
	if keep == keepAny || l == keep {
		c.scratch -= l
		c.pushFreeBuf(h.plain)
	} else {
		c.release(l, &c.scratch)
	}
	h.plain = nil
}

// trimInflated keeps decompressed copies within a sixteenth of the budget
// (at least one copy), dropping the least recently read idle ones.
func (c *Cache) trimInflated(keep *held) {
	limit := c.budget / 16
	for h := c.inflated.tail; h != nil && c.inflatedBytes > limit && c.inflated.len > 1; {
		prev := c.inflated.prev(h)
		if h != keep && h.refs == 0 && !h.excl {
			c.releasePlain(h, keepAny)
		}
		h = prev
	}
}

// pushFreeBuf keeps an idle buffer, still counted in held.
func (c *Cache) pushFreeBuf(b []byte) {
	l := int64(len(b))
	c.freeBufs[l] = append(c.freeBufs[l], b)
	c.freeBytes += l
}

func (c *Cache) popFreeBuf(l int64) []byte {
	bufs := c.freeBufs[l]
	if len(bufs) == 0 {
		return nil
	}
	b := bufs[len(bufs)-1]
	bufs[len(bufs)-1] = nil
	c.freeBufs[l] = bufs[:len(bufs)-1]
	return b
}

// dropFree releases every idle buffer and file.
func (c *Cache) dropFree() {
	for l, bufs := range c.freeBufs {
		c.release(l*int64(len(bufs)), &c.freeBytes)
	}
	for l, files := range c.freeFiles {
		c.release(l*int64(len(files)), &c.freeBytes)
		for _, path := range files {
			c.pending = append(c.pending, pendingOp{path: path})
		}
	}
	clear(c.freeBufs)
	clear(c.freeFiles)
}

// trimFds closes the files of the least recently used idle pieces beyond
// maxOpenFiles.
func (c *Cache) trimFds() {
	for h := c.fds.tail; h != nil && c.fds.len > maxOpenFiles; {
		prev := c.fds.prev(h)
		if h.refs == 0 && !h.excl {
			c.pending = append(c.pending, pendingOp{f: h.f})
			h.f = nil
			c.fds.remove(h)
		}
		h = prev
	}
}

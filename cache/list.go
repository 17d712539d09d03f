package cache

// Intrusive doubly linked lists of held pieces. A piece can sit in several
// lists at once (recency, decompressed copies, open files), one link pair
// per list, so moving a piece never allocates.

type listKind uint8

const (
	lruList      listKind = iota // held, unpinned pieces; front = most recently useful
	inflatedList                 // compressed pieces with a decompressed copy
	fdList                       // file backend: pieces with an open file
	numLists
)

type links struct {
	prev, next *held
	in         bool
}

type plist struct {
	kind       listKind
	head, tail *held
	len        int
}

func (l *plist) pushFront(h *held) {
	lk := &h.links[l.kind]
	if lk.in {
		l.moveFront(h)
		return
	}
	lk.in = true
	lk.prev = nil
	lk.next = l.head
	if l.head != nil {
		l.head.links[l.kind].prev = h
	} else {
		l.tail = h
	}
	l.head = h
	l.len++
}

func (l *plist) remove(h *held) {
	lk := &h.links[l.kind]
	if !lk.in {
		return
	}
	if lk.prev != nil {
		lk.prev.links[l.kind].next = lk.next
	} else {
		l.head = lk.next
	}
	if lk.next != nil {
		lk.next.links[l.kind].prev = lk.prev
	} else {
		l.tail = lk.prev
	}
	*lk = links{}
	l.len--
}

func (l *plist) moveFront(h *held) {
	if !h.links[l.kind].in {
		l.pushFront(h)
		return
	}
	if l.head == h {
		return
	}
	l.remove(h)
	l.pushFront(h)
}

// prev returns the element before h (towards the front).
func (l *plist) prev(h *held) *held { return h.links[l.kind].prev }

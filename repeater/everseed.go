package repeater

import "github.com/anacrolix/torrent/metainfo"

// SetEverseed tells the repeater which torrents of its client are
// published torrents seeded in full from the owner's disk (package
// publish): their every piece is servable, whatever the cache holds.
// f must be cheap and safe for concurrent use; nil turns it off.
func (r *Repeater) SetEverseed(f func(ih metainfo.Hash) bool) {
	r.everseed.Store(&f)
}

func (r *Repeater) isEverseed(ih metainfo.Hash) bool {
	p := r.everseed.Load()
	return p != nil && *p != nil && (*p)(ih)
}

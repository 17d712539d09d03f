package btfs

// Claims is told which pieces each open file handle needs next, so that
// they are kept in the cache until read. Keys are comparable and unique
// per handle. Nil Options.Claims claims nothing.
type Claims interface {
	// Claim says the handle key needs pieces [begin, end) now; it replaces
	// the handle's previous claim.
	Claim(key any, begin, end int)
	// Unclaim drops the handle's claim.
	Unclaim(key any)
}

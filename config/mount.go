package config

import "time"

// Mount is the [mount] section: how "btslave mount" serves reads (btfs).
type Mount struct {
	// ReadTimeout is the longest a read through a mount waits for its
	// pieces before it fails with EIO (and a log line).
	ReadTimeout Duration `toml:"read_timeout"`
	// MaxReadahead caps each open file's readahead, in bytes.
	MaxReadahead Size `toml:"max_readahead"`
}

// prepareMount checks [mount]. The readahead is clamped to a quarter of
// the cache, so that a few readers never fill it with readahead alone.
func (c *Config) prepareMount(bad func(key, format string, args ...any)) {
	m := &c.Mount
	if d := m.ReadTimeout.Std(); d < time.Second || d > time.Hour {
		bad("mount.read_timeout", "%v is outside 1s..1h", d)
	}
	if m.MaxReadahead < 256<<10 {
		bad("mount.max_readahead", "%v is below the minimum of 256KiB", m.MaxReadahead)
	} else if q := c.Cache.Size / 4; m.MaxReadahead > q && q >= 256<<10 {
		m.MaxReadahead = q
	}
}

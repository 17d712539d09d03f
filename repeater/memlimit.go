package repeater

import (
	"os"
	"runtime/debug"
)

// memoryHeadroom is what the process needs beyond the piece cache: the
// client, its per-connection buffers and garbage not yet collected.
const memoryHeadroom = 24 << 20

// SetMemoryLimit sets Go's soft memory limit to the cache budget plus
// headroom, so that the collector works to keep the process near what the
// owner configured instead of letting garbage double the heap. An explicit
// GOMEMLIMIT wins. It returns the limit in force.
func SetMemoryLimit(cacheBudget int64) int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1)
	}
	limit := cacheBudget + memoryHeadroom
	debug.SetMemoryLimit(limit)
	return limit
}

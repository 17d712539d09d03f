// Package buildinfo tells which btslave this is.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// Version is set at link time with
// -ldflags "-X github.com/btslave/btslave/internal/buildinfo.Version=v1.2.3";
// otherwise it is derived from the module and VCS information Go records.
var Version = ""

var once sync.Once

// String returns the version, e.g. "v0.1.0" or "0.1.0-dev+3f2a9c1".
func String() string {
	once.Do(func() {
		if Version != "" {
			return
		}
		Version = "0.1.0-dev"
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			return
		}
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			Version = v
			return
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 7 {
				Version += "+" + s.Value[:7]
			}
		}
	})
	return Version
}

// PeerIDPrefix is our BEP 20 peer ID prefix: "-BS" + 4 version digits + "-".
const PeerIDPrefix = "-BS0010-"

// ClientName is what we call ourselves in BEP 10 handshakes and User-Agents.
func ClientName() string { return "btslave/" + String() }

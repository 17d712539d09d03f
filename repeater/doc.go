// Package repeater joins BitTorrent swarms as an upload-only partial seed
// and serves them from the bounded piece cache.
//
// It owns the daemon's one anacrolix client. Today it builds that client
// from the [peer] configuration (NewClient); the wire layer, the demand-driven
// piece picker, the announcer and the swarm rotation live here as they come.
package repeater

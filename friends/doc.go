// Package friends gives the daemon an identity (an ed25519 key and its
// friend ID) and the means to befriend other repeaters: invite codes now,
// signed hellos, help requests and swarm-stats gossip as the protocol in
// docs/friends-protocol.md lands.
//
// A friend is a key, never an IP: the ID is the SHA-256 of the ed25519
// public key, written like a Syncthing device ID (base32, one Luhn check
// character per 13, dashes every 7).
package friends

// Package friends gives the daemon an identity (an ed25519 key and its
// friend ID) and speaks the friends protocol with other repeaters: invites,
// signed hellos, help requests and swarm-stats gossip.
//
// It is empty until the friends work lands; the [friends] configuration
// section already parses and validates.
package friends

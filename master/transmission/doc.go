// Package transmission is a small client of Transmission's RPC, for
// btslave's master adapter.
//
// It does the 409 X-Transmission-Session-Id handshake and basic auth, and
// speaks both forms of the protocol: the classic one of Transmission 3.00
// and 4.0 (method "torrent-get", kebab/camel-case fields, reply
// {"result":"success","arguments":{...}}) and JSON-RPC 2.0 with snake_case
// names of 4.1 and later ("torrent_get", "hash_string", reply
// {"jsonrpc":"2.0","result":{...}}), chosen from the rpc-version the
// server reports in session-get (18 and up, or an rpc-version-semver of
// 6.0.0 and up, speak JSON-RPC 2.0).
//
// Transmission has no RPC to add a peer, and in the lab it never dials
// loopback peers: the helper dials the master.
package transmission

// Package wire is the repeater's wire layer: a net.Conn wrapper installed
// under the anacrolix client (Client.AddListener / AddDialer) that reads
// the BitTorrent framing in both directions and mends what the library
// cannot do for a partial seed with a bounded cache.
//
// # What it does
//
//   - adds upload_only: 1 to our BEP 10 extended handshake for torrents in
//     partial-seed mode (BEP 21), and sends the upload_only extension
//     message when the mode changes;
//   - answers a REQUEST for a piece we no longer hold with REJECT (BEP 6)
//     when both sides support the fast extension, and otherwise drops it,
//     so the library never sees it and never closes the connection;
//   - sends lt_donthave (BEP 54) when a piece is evicted, to peers that
//     support it, and injects HAVE when a piece becomes available again;
//   - keeps per-peer state (bitfield, interest, choke, bytes each way,
//     client name, extensions) for the repeater to read;
//   - paces each peer's upload separately (Conn.SetUploadRate).
//
// # What it leaves alone
//
// MSE (encrypted) connections: with Layer.Decrypt the layer does the
// handshake of incoming ones itself and parses the decrypted stream, so the
// library sees plaintext. Connections it cannot read (the library's own
// outgoing MSE, when the client prefers encryption) are passed through
// untouched, or refused with Layer.RefuseEncrypted.
//
// # Framing and injection
//
// Inbound, only a REQUEST (17 bytes) or an incomplete header is ever held
// back; everything else is handed on as it arrives, with HAVE, BITFIELD and
// the extended handshake copied aside to be parsed. Outbound, our extended
// handshake is held whole and rewritten; injected messages wait for the
// next message boundary of the library's stream. A length over
// MaxMessageLen, a malformed fixed-size message or bad bencode in the
// peer's extended handshake closes that one connection: Read returns an
// error and the library drops the peer.
//
// # Compression
//
// BEP 56 stream compression (docs/bep56.md) sits between this parser and
// the network. Our extended handshake gains "c", "cp" and m.lt_compress
// (Layer.Compress); once both handshakes are exchanged and the peer
// offers a common algorithm, we queue our lt_compress marker at the next
// message boundary, and everything we send after it goes through the
// encoder (zwrite.go: one frame or raw block per run of PIECE messages,
// flushed at the end of every Write). The peer's marker is kept from the
// library; after it, the peer's bytes are decoded block by block
// (zread.go), within a 64 KiB window and at most 64 times the compressed
// bytes, before this parser sees them. Each direction is independent; a
// peer without "c" sees an ordinary connection. Cached blocks held as
// zstd frames (Frames) are sent as they are.
package wire

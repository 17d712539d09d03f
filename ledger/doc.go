// Package ledger keeps the IOU ledger: countersigned records of help given
// to and received from friends, in the daemon's one bbolt database, from
// which the balance that decides whom to help is computed.
//
// # Model
//
// Per ordered pair (debtor, creditor) there is one IOU holding the running
// total of bytes the creditor delivered for the debtor, after Tribler's
// bandwidth accounting: seq, pk_a (debtor, the one helped), pk_b
// (creditor, the helper), total, sig_a, sig_b. The creditor signs a
// proposal (Propose); the debtor countersigns only the next one (seq+1,
// total not lower, growth no more than it saw delivered) and otherwise
// answers with its own latest (Countersign returns ErrStale and that IOU),
// which is how two daemons resync. The creditor stores the countersigned
// IOU with Accept. A replayed IOU is harmless by construction: it is never
// above what is held.
//
// # Buckets
//
// "ledger"/"latest" maps debtor‖creditor (64 bytes) to the newest IOU;
// "ledger"/"history" maps debtor‖creditor‖seq to the IOU, the time, the
// growth and the reason, so that `btslave ledger` can explain why a balance
// is what it is. Both are written in one transaction.
//
// A friend's balance (Balance.Net) is what we delivered for it minus what
// it delivered for us.
package ledger

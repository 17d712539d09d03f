// Package friendsvc answers friends on the direct channel with the ledger,
// the helper machinery and the owner's caps: it implements
// friends.Handler, reports delivered bytes as IOUs, and cashes in (asks
// friends, best balance first, to help our master).
//
// It sits above friends and ledger and below the daemon, which gives it
// the repeater's helper through the narrow Helper interface.
package friendsvc

// Package ledger keeps the IOU ledger: countersigned records of help given
// to and received from friends, in the daemon's database, from which the
// balance that decides whom to help is computed.
//
// It is empty until the friends work lands.
package ledger

// Package adapter makes the master.Client that [master] names, so that
// the daemon needs to know no client kind itself.
package adapter

import (
	"fmt"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/master"
	"github.com/btslave/btslave/master/btslave"
	"github.com/btslave/btslave/master/qbittorrent"
	"github.com/btslave/btslave/master/transmission"
)

// New returns the client and filter of cfg; a nil client when kind is "".
func New(cfg config.Master) (master.Client, master.Filter, error) {
	f, err := master.NewFilter(cfg.Include, cfg.Exclude, cfg.Category)
	if err != nil {
		return nil, f, err
	}
	if cfg.Kind == "" {
		return nil, f, nil
	}
	pw, err := cfg.MasterPassword()
	if err != nil {
		return nil, f, err
	}
	switch cfg.Kind {
	case "transmission":
		return transmission.New(transmission.Options{URL: cfg.URL, Username: cfg.Username, Password: pw, PeerAddress: cfg.PeerAddress}), f, nil
	case "qbittorrent":
		return qbittorrent.New(qbittorrent.Options{URL: cfg.URL, Username: cfg.Username, Password: pw, PeerAddress: cfg.PeerAddress}), f, nil
	case "btslave":
		c, err := btslave.New(btslave.Options{URL: cfg.URL, Token: pw, PeerAddress: cfg.PeerAddress})
		return c, f, err
	}
	return nil, f, fmt.Errorf("master.kind %q: not transmission, qbittorrent or btslave", cfg.Kind)
}

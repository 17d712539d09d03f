package config

import (
	"net"
	"strconv"
	"time"
)

// prepareFriends checks [friends].
func (c *Config) prepareFriends(bad func(key, format string, args ...any)) {
	f := &c.Friends
	switch f.Accept {
	case "ask", "auto", "never":
	default:
		bad("friends.accept", "%q is not one of ask, auto, never", f.Accept)
	}
	if f.CreditLimit < 0 {
		bad("friends.credit_limit", "must not be negative")
	}
	if f.StarterCredit < 0 {
		bad("friends.starter_credit", "must not be negative")
	} else if f.StarterCredit > f.CreditLimit && f.CreditLimit >= 0 {
		bad("friends.starter_credit", "%v is above credit_limit %v", f.StarterCredit, f.CreditLimit)
	}
	if f.EverseedBudget < 0 {
		bad("friends.everseed_budget", "must not be negative")
	}
	if !(f.StarvedRatio >= 1 && f.StarvedRatio <= 1e6) {
		bad("friends.starved_ratio", "%v must be between 1 and 1e6 downloaders per seed", f.StarvedRatio)
	}
	if f.CashinHelpers < 1 || f.CashinHelpers > 100 {
		bad("friends.cashin_helpers", "%d is outside 1..100", f.CashinHelpers)
	}
	if time.Duration(f.ReportInterval) < time.Second || time.Duration(f.ReportInterval) > time.Hour {
		bad("friends.report_interval", "must be between 1s and 1h")
	}
	if time.Duration(f.InviteTTL) < time.Minute || time.Duration(f.InviteTTL) > 365*24*time.Hour {
		bad("friends.invite_ttl", "must be between 1m and 8760h")
	}
	if !f.Enabled {
		return
	}
	if f.Listen == "" || f.Listen.Port() == 0 {
		bad("friends.listen", "%q needs a host:port with a port", f.Listen)
	}
	if f.Address == "" {
		if h := f.Listen.Host(); h == "" || h == "0.0.0.0" || h == "::" {
			bad("friends.address", "must be set when friends.listen %q is a wildcard: invites need an address friends can dial", f.Listen)
		}
	} else if h, p, err := net.SplitHostPort(f.Address); err != nil || h == "" || len(f.Address) > 255 {
		bad("friends.address", "%q is not a host:port of at most 255 bytes", f.Address)
	} else if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
		bad("friends.address", "%q needs a port from 1 to 65535", f.Address)
	}
}

// FriendsAddress is the address invite codes carry.
func (f Friends) FriendsAddress() string {
	if f.Address != "" {
		return f.Address
	}
	return string(f.Listen)
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/store"
	"github.com/btslave/btslave/ledger"
)

// The friends and ledger commands work on the data dir directly; while the
// daemon runs it holds the database, and they say so (the API endpoints
// for them are still to come).

func friendsCommand() *command {
	return &command{
		name:  "friends",
		short: "invite, add, list, accept or remove friends",
		long: `Friends are other repeaters that help your master and that you help in turn
(docs/friends-protocol.md). A friend is a key, shown as a friend ID; invite
codes carry that key, an address and an expiry, signed.

These commands work on the data dir while the daemon is stopped.`,
		subs: []*command{friendsInviteCommand(), friendsAddCommand(), friendsListCommand(false), friendsListCommand(true), friendsAcceptCommand(), friendsRemoveCommand()},
	}
}

// withFriends opens the identity, database and friend book of the data dir.
func (g *globalOptions) withFriends(e env, fn func(cfg *config.Config, id friends.Identity, db *store.DB, bk *friends.Book) error) error {
	cfg, err := g.load(e)
	if err != nil {
		return err
	}
	id, err := friends.LoadIdentity(cfg.DataDir)
	if err != nil {
		return err
	}
	db, err := store.Open(cfg.DataDir, store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w (friends commands need the daemon stopped for now)", err)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	bk, err := friends.OpenBook(db.DB)
	if err != nil {
		return err
	}
	return fn(cfg, id, db, bk)
}

func friendsInviteCommand() *command {
	var g globalOptions
	var ttl time.Duration
	return &command{
		name:  "invite",
		short: "print an invite code for another repeater",
		long: `Prints this daemon's friend ID and an invite code carrying it, the address
friends should dial ([friends] address, or listen) and an expiry
([friends] invite_ttl unless --ttl). Give the code to the other owner, who
runs 'btslave friends add CODE'. Whoever holds the code may become your
friend until it expires.`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.DurationVar(&ttl, "ttl", 0, "how long the code stays valid (default [friends] invite_ttl)")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 0 {
				return usageErr("friends invite takes no arguments")
			}
			cfg, err := g.load(e)
			if err != nil {
				return err
			}
			id, err := friends.LoadIdentity(cfg.DataDir)
			if err != nil {
				return err
			}
			if ttl <= 0 {
				ttl = cfg.Friends.InviteTTL.Std()
			}
			addr := cfg.Friends.FriendsAddress()
			if h := config.Addr(addr).Host(); cfg.Friends.Address == "" && (h == "" || h == "0.0.0.0" || h == "::") {
				return usageErr("[friends] listen %q is a wildcard; set [friends] address to one friends can dial", addr)
			}
			inv, err := friends.NewInvite(id, addr, ttl, time.Now())
			if err != nil {
				return usageErr("%v", err)
			}
			fmt.Fprintf(e.stdout, "friend ID %s\ninvite (valid until %s):\n%s\n", id.ID(), inv.Expires.UTC().Format(time.RFC3339), inv)
			return nil
		},
	}
}

func friendsAddCommand() *command {
	var g globalOptions
	return &command{
		name:  "add",
		args:  "CODE",
		short: "become friends with the repeater that gave you CODE",
		long: `Checks the invite code (signature, expiry) and adds its key as a friend,
with the address in it. The daemon then dials that address with the code
so that the other side adds your key too.`,
		flags: g.addFlags,
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 1 {
				return usageErr("friends add takes one invite code")
			}
			inv, err := friends.ParseInvite(args[0], time.Now())
			if err != nil {
				return usageErr("%v", err)
			}
			return g.withFriends(e, func(_ *config.Config, id friends.Identity, _ *store.DB, bk *friends.Book) error {
				if inv.ID() == id.ID() {
					return usageErr("that is this daemon's own invite")
				}
				f, err := bk.AddInvite(inv)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "added friend %s at %s\n", f.ID(), termSafe(f.Addr))
				return nil
			})
		},
	}
}

func friendsListCommand(pending bool) *command {
	var g globalOptions
	name, short := "list", "list friends"
	if pending {
		name, short = "pending", "list friend requests waiting for 'friends accept'"
	}
	return &command{
		name:  name,
		short: short,
		long: short + `. Requests come from repeaters met in a swarm while
[friends] accept = "ask".`,
		flags: g.addFlags,
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 0 {
				return usageErr("friends %s takes no arguments", name)
			}
			return g.withFriends(e, func(_ *config.Config, _ friends.Identity, _ *store.DB, bk *friends.Book) error {
				list := bk.List
				if pending {
					list = bk.Pending
				}
				fs, err := list()
				if err != nil {
					return err
				}
				if len(fs) == 0 {
					fmt.Fprintf(e.stdout, "none\n")
					return nil
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "ID\tADDRESS\tVIA\tSINCE\n")
				for _, f := range fs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.ID(), termSafe(f.Addr), termSafe(f.Via), f.Added.Format(time.DateTime))
				}
				return tw.Flush()
			})
		},
	}
}

func parseIDArg(cmd string, args []string) (friends.ID, error) {
	if len(args) != 1 {
		return friends.ID{}, usageErr("friends %s takes one friend ID", cmd)
	}
	id, err := friends.IDFromString(args[0])
	if err != nil {
		return id, usageErr("%v", err)
	}
	return id, nil
}

func friendsAcceptCommand() *command {
	return friendByIDCommand("accept", "accepted", "accept a pending friend request",
		`Makes the repeater with this friend ID ('friends pending' lists them) a friend.`,
		func(bk *friends.Book, fid friends.ID) error { _, err := bk.Accept(fid); return err })
}

func friendsRemoveCommand() *command {
	return friendByIDCommand("remove", "removed", "remove a friend or a pending request",
		`Removes a friend (or a pending request). The ledger keeps its IOUs, so a
friend added again keeps its standing.`,
		func(bk *friends.Book, fid friends.ID) error { return bk.Remove(fid) })
}

// friendByIDCommand is a "friends NAME ID" command that applies act to the
// friend book and prints "DONE ID".
func friendByIDCommand(name, done, short, long string, act func(*friends.Book, friends.ID) error) *command {
	var g globalOptions
	return &command{
		name:  name,
		args:  "ID",
		short: short,
		long:  long,
		flags: g.addFlags,
		run: func(ctx context.Context, e env, args []string) error {
			fid, err := parseIDArg(name, args)
			if err != nil {
				return err
			}
			return g.withFriends(e, func(_ *config.Config, _ friends.Identity, _ *store.DB, bk *friends.Book) error {
				if err := act(bk, fid); err != nil {
					return usageErr("%v", err)
				}
				fmt.Fprintf(e.stdout, "%s %s\n", done, fid)
				return nil
			})
		},
	}
}

func ledgerCommand() *command {
	var g globalOptions
	return &command{
		name:  "ledger",
		short: "show balances with friends and why each is what it is",
		long: `Prints, per friend, the balance (what we delivered to its master minus what
it delivered to ours, in bytes) and every countersigned IOU behind it with
its reason. Works on the data dir while the daemon is stopped.`,
		flags: g.addFlags,
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 0 {
				return usageErr("ledger takes no arguments")
			}
			return g.withFriends(e, func(_ *config.Config, id friends.Identity, db *store.DB, bk *friends.Book) error {
				l, err := ledger.Open(db.DB, ledger.Options{Identity: id})
				if err != nil {
					return err
				}
				accts, err := l.Accounts()
				if err != nil {
					return err
				}
				var b strings.Builder
				ledger.WriteReport(&b, accts, func(fid friends.ID) string {
					if bk.IsFriend(fid) {
						return ""
					}
					return "(former friend)"
				})
				fmt.Fprint(e.stdout, termSafeLines(b.String()))
				return nil
			})
		},
	}
}

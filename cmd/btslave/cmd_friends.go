package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/friends"
	"github.com/btslave/btslave/internal/api"
	"github.com/btslave/btslave/internal/store"
	"github.com/btslave/btslave/ledger"
)

// The friends and ledger commands talk to the running daemon through its
// API; while it is stopped they open the data dir themselves. The daemon's
// lock on the database says which.

func friendsCommand() *command {
	return &command{
		name:  "friends",
		short: "invite, add, list, accept, deny or remove friends",
		long: `Friends are other repeaters that help your master and that you help in turn
(docs/friends-protocol.md). A friend is a key, shown as a friend ID; invite
codes carry that key, an address and an expiry, signed.

These commands work on the running daemon through its API, or on the data
dir while the daemon is stopped. The dashboard's Friends page does the
same.`,
		subs: []*command{friendsInviteCommand(), friendsAddCommand(), friendsListCommand(false), friendsListCommand(true),
			friendsAcceptCommand(), friendsDenyCommand(), friendsRemoveCommand()},
	}
}

// offlineFriends is the data dir of a stopped daemon: its configuration,
// identity, database, friend book and ledger.
type offlineFriends struct {
	cfg    *config.Config
	id     friends.Identity
	book   *friends.Book
	ledger *ledger.Store
}

// withFriends runs online against the running daemon when it holds the
// data dir, else offline on the data dir.
func (g *globalOptions) withFriends(ctx context.Context, e env, online func(context.Context, *api.Client) error, offline func(o *offlineFriends) error) error {
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
		err = g.callAPI(ctx, e, 15*time.Second, online)
		if errors.Is(err, api.ErrNotFound) {
			return &exitError{exitUsage, err}
		}
		return err
	}
	if err != nil {
		return err
	}
	defer db.Close()
	bk, err := friends.OpenBook(db.DB)
	if err != nil {
		return err
	}
	l, err := ledger.Open(db.DB, ledger.Options{Identity: id})
	if err != nil {
		return err
	}
	return offline(&offlineFriends{cfg: cfg, id: id, book: bk, ledger: l})
}

// info is fr as the API shows it, with its balance.
func (o *offlineFriends) info(fr friends.Friend) (api.FriendInfo, error) {
	id := fr.ID()
	fi := api.FriendInfo{ID: id.String(), Short: id.Short(), Name: fr.Name, Addr: fr.Addr, Via: fr.Via, Added: fr.Added, InviteUnused: fr.Invite != ""}
	b, err := o.ledger.BalanceOf(fr.Key)
	fi.Given, fi.Taken, fi.Balance = b.Given, b.Taken, b.Net()
	return fi, err
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
			print := func(id, code string, expires time.Time) {
				fmt.Fprintf(e.stdout, "friend ID %s\ninvite (valid until %s):\n%s\n", id, expires.UTC().Format(time.RFC3339), code)
			}
			return g.withFriends(ctx, e, func(ctx context.Context, c *api.Client) error {
				ic, err := c.Invite(ctx, api.InviteRequest{TTL: api.Seconds(ttl.Seconds())})
				if err != nil {
					return err
				}
				print(ic.ID, ic.Code, ic.Expires)
				return nil
			}, func(o *offlineFriends) error {
				if ttl <= 0 {
					ttl = o.cfg.Friends.InviteTTL.Std()
				}
				addr := o.cfg.Friends.FriendsAddress()
				if h := config.Addr(addr).Host(); o.cfg.Friends.Address == "" && (h == "" || h == "0.0.0.0" || h == "::") {
					return usageErr("[friends] listen %q is a wildcard; set [friends] address to one friends can dial", addr)
				}
				inv, err := friends.NewInvite(o.id, addr, ttl, time.Now())
				if err != nil {
					return usageErr("%v", err)
				}
				print(o.id.ID().String(), inv.String(), inv.Expires)
				return nil
			})
		},
	}
}

func friendsAddCommand() *command {
	var g globalOptions
	var name string
	return &command{
		name:  "add",
		args:  "CODE",
		short: "become friends with the repeater that gave you CODE",
		long: `Checks the invite code (signature, expiry) and adds its key as a friend,
with the address in it. The daemon then dials that address with the code
so that the other side adds your key too.`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.StringVar(&name, "name", "", "your label for the friend")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 1 {
				return usageErr("friends add takes one invite code")
			}
			inv, err := friends.ParseInvite(args[0], time.Now())
			if err != nil {
				return usageErr("%v", err)
			}
			done := func(f api.FriendInfo) {
				fmt.Fprintf(e.stdout, "added friend %s at %s\n", f.ID, termSafe(f.Addr))
			}
			return g.withFriends(ctx, e, func(ctx context.Context, c *api.Client) error {
				f, err := c.AddFriend(ctx, api.AddFriendRequest{Code: args[0], Name: name})
				if err == nil {
					done(*f)
				}
				return err
			}, func(o *offlineFriends) error {
				if inv.ID() == o.id.ID() {
					return usageErr("that is this daemon's own invite")
				}
				f, err := o.book.AddInvite(inv)
				if err != nil {
					return err
				}
				if name != "" {
					if f, err = o.book.SetName(f.ID(), name); err != nil {
						return err
					}
				}
				fi, err := o.info(f)
				if err == nil {
					done(fi)
				}
				return err
			})
		},
	}
}

func friendsListCommand(pending bool) *command {
	var g globalOptions
	var asJSON bool
	name, short := "list", "list friends with their balances"
	if pending {
		name, short = "pending", "list friend requests waiting for 'friends accept' or 'friends deny'"
	}
	return &command{
		name:  name,
		short: short,
		long: short + `. Requests come from repeaters met in a swarm while
[friends] accept = "ask". BALANCE is what we delivered to the friend's
master minus what it delivered to ours, countersigned, in bytes; LAST SEEN
is its last message since the daemon started (running daemon only).`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.BoolVar(&asJSON, "json", false, "print as JSON")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 0 {
				return usageErr("friends %s takes no arguments", name)
			}
			show := func(fs []api.FriendInfo) error {
				if asJSON {
					return printJSON(e.stdout, fs)
				}
				return printFriends(e, fs)
			}
			return g.withFriends(ctx, e, func(ctx context.Context, c *api.Client) error {
				l, err := c.Friends(ctx)
				if err != nil {
					return err
				}
				if !l.Enabled {
					fmt.Fprintln(e.stderr, "note: [friends] is off in the running daemon")
				}
				if pending {
					return show(l.Pending)
				}
				return show(l.Friends)
			}, func(o *offlineFriends) error {
				list := o.book.List
				if pending {
					list = o.book.Pending
				}
				fs, err := list()
				if err != nil {
					return err
				}
				out := []api.FriendInfo{}
				for _, f := range fs {
					fi, err := o.info(f)
					if err != nil {
						return err
					}
					out = append(out, fi)
				}
				return show(out)
			})
		},
	}
}

func printFriends(e env, fs []api.FriendInfo) error {
	if len(fs) == 0 {
		fmt.Fprintf(e.stdout, "none\n")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\tNAME\tADDRESS\tVIA\tSINCE\tBALANCE\tLAST SEEN\n")
	for _, f := range fs {
		seen := "-"
		if !f.LastSeen.IsZero() {
			seen = f.LastSeen.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%+d\t%s\n", f.ID, termSafe(cmp.Or(f.Name, "-")), termSafe(f.Addr), termSafe(f.Via),
			f.Added.Local().Format(time.DateTime), f.Balance, seen)
	}
	return tw.Flush()
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
		func(ctx context.Context, c *api.Client, fid friends.ID) error {
			_, err := c.AcceptFriend(ctx, fid.String())
			return err
		},
		func(bk *friends.Book, fid friends.ID) error { _, err := bk.Accept(fid); return err })
}

func friendsDenyCommand() *command {
	return friendByIDCommand("deny", "denied", "drop a pending friend request",
		`Drops the pending request of the repeater with this friend ID ('friends
pending' lists them); a friend is left alone. The repeater may ask again
when met again in a swarm; [friends] accept = "never" refuses all.`,
		func(ctx context.Context, c *api.Client, fid friends.ID) error { return c.DenyFriend(ctx, fid.String()) },
		func(bk *friends.Book, fid friends.ID) error { return bk.Deny(fid) })
}

func friendsRemoveCommand() *command {
	return friendByIDCommand("remove", "removed", "remove a friend or a pending request",
		`Removes a friend (or a pending request). The ledger keeps its IOUs, so a
friend added again keeps its standing.`,
		func(ctx context.Context, c *api.Client, fid friends.ID) error {
			return c.RemoveFriend(ctx, fid.String())
		},
		func(bk *friends.Book, fid friends.ID) error { return bk.Remove(fid) })
}

// friendByIDCommand is a "friends NAME ID" command that applies online to
// the running daemon, or offline to the friend book, and prints "DONE ID".
func friendByIDCommand(name, done, short, long string, online func(context.Context, *api.Client, friends.ID) error, offline func(*friends.Book, friends.ID) error) *command {
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
			err = g.withFriends(ctx, e, func(ctx context.Context, c *api.Client) error {
				return online(ctx, c, fid)
			}, func(o *offlineFriends) error {
				if err := offline(o.book, fid); err != nil {
					return usageErr("%v", err)
				}
				return nil
			})
			if err == nil {
				fmt.Fprintf(e.stdout, "%s %s\n", done, fid)
			}
			return err
		},
	}
}

func ledgerCommand() *command {
	var g globalOptions
	var asJSON bool
	return &command{
		name:  "ledger",
		short: "show balances with friends and why each is what it is",
		long: `Prints, per friend, the balance (what we delivered to its master minus what
it delivered to ours, in bytes) and every countersigned IOU behind it with
its reason. Asks the running daemon, or reads the data dir while it is
stopped.`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.BoolVar(&asJSON, "json", false, "print the accounts as JSON")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) != 0 {
				return usageErr("ledger takes no arguments")
			}
			show := func(accts []ledger.Account, former func(friends.ID) bool) error {
				if asJSON {
					return printJSON(e.stdout, accts)
				}
				var b strings.Builder
				ledger.WriteReport(&b, accts, func(fid friends.ID) string {
					if former(fid) {
						return "(former friend)"
					}
					return ""
				})
				fmt.Fprint(e.stdout, termSafeLines(b.String()))
				return nil
			}
			return g.withFriends(ctx, e, func(ctx context.Context, c *api.Client) error {
				l, err := c.Ledger(ctx)
				if err != nil {
					return err
				}
				accts, former := accountsOf(l)
				return show(accts, func(fid friends.ID) bool { return former[fid] })
			}, func(o *offlineFriends) error {
				accts, err := o.ledger.Accounts()
				if err != nil {
					return err
				}
				return show(accts, func(fid friends.ID) bool { return !o.book.IsFriend(fid) })
			})
		},
	}
}

// accountsOf turns the API's ledger back into the ledger's accounts, so
// that both paths print the same report.
func accountsOf(l *api.Ledger) ([]ledger.Account, map[friends.ID]bool) {
	former := map[friends.ID]bool{}
	var out []ledger.Account
	for _, a := range l.Accounts {
		id, err := friends.IDFromString(a.Friend)
		if err != nil {
			continue
		}
		former[id] = a.Former
		ac := ledger.Account{Balance: ledger.Balance{Friend: id, Given: a.Given, Taken: a.Taken}, Net: a.Balance}
		for _, e := range a.Entries {
			ac.Entries = append(ac.Entries, ledger.Line{Time: e.Time, Dir: e.Dir, Seq: e.Seq, Delta: e.Delta, Total: e.Total, Reason: e.Reason})
		}
		out = append(out, ac)
	}
	return out, former
}

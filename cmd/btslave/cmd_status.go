package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/btslave/btslave/internal/api"
)

func statusCommand() *command {
	var g globalOptions
	var asJSON bool
	return &command{
		name:  "status",
		short: "show what the running daemon is doing",
		long: `Asks the running daemon over its local API (address and token from the
config and the data dir) and prints a summary.`,
		flags: func(fs *flag.FlagSet) {
			g.addFlags(fs)
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		},
		run: func(ctx context.Context, e env, args []string) error {
			if len(args) > 0 {
				return usageErr("status takes no arguments")
			}
			var st *api.Status
			if err := g.callAPI(ctx, e, 10*time.Second, func(ctx context.Context, client *api.Client) (err error) {
				if st, err = client.Status(ctx); err != nil {
					return err
				}
				if st.Mounts == nil {
					// A daemon older than Status.Mounts: ask the mounts
					// endpoint; one without it answers an error, and
					// status shows no mounts rather than failing.
					st.Mounts, _ = client.Mounts(ctx)
				}
				return nil
			}); err != nil {
				return err
			}
			if asJSON {
				return printJSON(e.stdout, st)
			}
			printStatus(e.stdout, st)
			printMounts(e.stdout, st.Mounts)
			return nil
		},
	}
}

func printStatus(w io.Writer, st *api.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	cfgFile := st.ConfigFile
	if cfgFile == "" {
		cfgFile = "(embedded defaults)"
	}
	fmt.Fprintf(tw, "btslave %s\tpid %d, up %s\n", termSafe(st.Version), st.PID, st.Uptime.Duration().Round(time.Second))
	fmt.Fprintf(tw, "config\t%s\n", termSafe(cfgFile))
	fmt.Fprintf(tw, "data dir\t%s\n", termSafe(st.DataDir))
	fmt.Fprintf(tw, "api\t%s\n", termSafe(st.API))
	for _, step := range st.NextSteps {
		fmt.Fprintf(tw, "next\t%s\n", termSafe(step))
	}
	p := st.Peer
	fmt.Fprintf(tw, "peer\tport %d (%s), DHT %s, PEX %s, limits up %s down %s\n",
		p.Port, termSafe(p.Listen), onOff(p.DHT), onOff(p.PEX), rate(p.UploadLimit), rate(p.DownloadLimit))
	fmt.Fprintf(tw, "traffic\t%s up, %s down, %d peers\n", fmtBytes(p.BytesUploaded), fmtBytes(p.BytesDownloaded), p.Peers)
	fmt.Fprintf(tw, "cache\t%s of %s held (%s), %d pieces, %d evictions",
		fmtBytes(st.Cache.Held), fmtBytes(st.Cache.Budget), termSafe(st.Cache.Backend), st.Cache.Pieces, st.Cache.Evictions)
	if r := st.Cache.CompressRatio; r > 0 && r < 1 {
		fmt.Fprintf(tw, ", compressed to %.0f%%", 100*r)
	}
	fmt.Fprintln(tw)
	printCompression(tw, st.Compression)
	printFeedsAuto(tw, st)
	printTracker(tw, st.Tracker)
	printMaster(tw, st.Master)
	printFriendsHelp(tw, st.Friends)
	defer func() {
		if len(st.Visits) == 0 {
			return
		}
		fmt.Fprintf(tw, "recent visits\t%d\n", len(st.Visits))
		for _, v := range st.Visits {
			fmt.Fprintf(tw, "  %.8s\t%s: %s up, %s down (ratio %.1f), %d peers served, %s, left: %s\n",
				termSafe(v.InfoHash), termSafe(v.Name), fmtBytes(v.Uploaded), fmtBytes(v.Downloaded), v.Ratio, v.PeersServed,
				v.Left.Sub(v.Joined).Round(time.Second), termSafe(v.Reason))
		}
	}()
	if len(st.Torrents) == 0 {
		fmt.Fprintf(tw, "torrents\tnone\n")
		return
	}
	fmt.Fprintf(tw, "torrents\t%d\n", len(st.Torrents))
	for _, t := range st.Torrents {
		origin := ""
		if t.Origin != "" {
			origin = " (" + termSafe(t.Origin) + ")"
		}
		quiet := ""
		if t.Quiet != "" {
			quiet = fmt.Sprintf("; quiet for %s (%s), fetching nothing new", ago(time.Now(), t.QuietSince), termSafe(t.Quiet))
		}
		fmt.Fprintf(tw, "  %.8s\t%s%s: %d/%d pieces, %d peers, %s up, %s down%s\n",
			termSafe(t.InfoHash), termSafe(t.Name), origin, t.PiecesHeld, t.Pieces, t.Peers, fmtBytes(t.BytesUploaded), fmtBytes(t.BytesDownloaded), quiet)
		if t.Error != "" {
			fmt.Fprintf(tw, "  \t%s\n", termSafe(t.Error))
		}
	}
}

// printMounts lists the daemon's mounts (BTFS), one line each.
func printMounts(w io.Writer, ms []api.Mount) {
	if len(ms) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintf(tw, "mounts\t%d\n", len(ms))
	for _, m := range ms {
		name := m.Name
		if name == "" {
			name = "(metadata not known yet)"
		}
		state := ""
		if m.State != "" && m.State != api.MountFailed { // a failure says why below
			state = m.State + ", "
		}
		fmt.Fprintf(tw, "  %s\t%.8s %s: %s%d reads, %s read, %d timeouts, %d open files",
			termSafe(m.Dir), termSafe(m.InfoHash), termSafe(name), termSafe(state), m.Reads, fmtBytes(m.BytesRead), m.Timeouts, m.Open)
		if m.Error != "" {
			fmt.Fprintf(tw, "; not served: %s", termSafe(m.Error))
		}
		fmt.Fprintln(tw)
	}
}

// printFriendsHelp prints who helps our master, how much arrived and how
// much each friend was credited; then whose masters we help.
func printFriendsHelp(w io.Writer, f *api.FriendsHelp) {
	if f == nil || len(f.HelpedBy)+len(f.Helping) == 0 {
		return
	}
	for _, in := range f.HelpedBy {
		fmt.Fprintf(w, "helped by	%.8s: %s arrived at our master since %s, %s credited",
			termSafe(in.InfoHash), fmtBytes(in.Arrived), in.Since.Format(time.TimeOnly), fmtBytes(in.Credited))
		for _, fr := range in.Friends {
			fmt.Fprintf(w, "; %s %s", termSafe(shortID(fr.Friend)), fmtBytes(fr.Credited))
		}
		fmt.Fprintln(w)
	}
	for _, h := range f.Helping {
		fmt.Fprintf(w, "helping	%s's master with %.8s: %s sent, %s credited\n",
			termSafe(shortID(h.Friend)), termSafe(h.InfoHash), fmtBytes(h.Sent), fmtBytes(h.Credited))
	}
}

// shortID is a friend ID's first group, as `btslave friends list` shows.
func shortID(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	return id
}

// printCompression prints BEP 56's line and one line per compressed
// connection, with wire/plain each way.
func printCompression(w io.Writer, c api.Compression) {
	fmt.Fprintf(w, "compression\t%d peers now, %d since start; saved %s up, %s down",
		len(c.Peers), c.Connections, fmtBytes(c.SavedUp), fmtBytes(c.SavedDown))
	if c.FramesSpliced > 0 {
		fmt.Fprintf(w, "; %d cached blocks sent as they are", c.FramesSpliced)
	}
	if c.Refused > 0 {
		fmt.Fprintf(w, "; %d streams refused", c.Refused)
	}
	fmt.Fprintln(w)
	way := func(algo string, plain int64, ratio float64) string {
		if algo == "" {
			return "plain"
		}
		return fmt.Sprintf("%s %.0f%% of %s", termSafe(algo), 100*ratio, fmtBytes(plain))
	}
	for _, p := range c.Peers {
		fmt.Fprintf(w, "  %s\t%s: up %s, down %s\n", termSafe(p.Addr), termSafe(p.Client),
			way(p.Up, p.UpPlain, p.UpRatio), way(p.Down, p.DownPlain, p.DownRatio))
	}
}

// printFeedsAuto prints the feeds and the autopilot lines of the status.
func printFeedsAuto(w io.Writer, st *api.Status) {
	failing := 0
	for _, f := range st.Feeds {
		if f.LastError != "" {
			failing++
		}
	}
	fmt.Fprintf(w, "feeds\t%d", len(st.Feeds))
	if failing > 0 {
		fmt.Fprintf(w, " (%d failing: see 'btslave feeds list')", failing)
	}
	fmt.Fprintf(w, ", %d torrents in the catalog\n", st.Catalog)
	ap := st.Autopilot
	if !ap.Enabled {
		fmt.Fprintf(w, "autopilot\t%s\n", termSafe(ap.Note))
		return
	}
	fmt.Fprintf(w, "autopilot\ton: %d of %d slots used (%d by the owner, %d by the autopilot), %d joins, %d leaves",
		ap.OwnerSwarms+ap.AutoSwarms, ap.Slots, ap.OwnerSwarms, ap.AutoSwarms, ap.Joins, ap.Leaves)
	now := time.Now()
	if ap.LastRank.IsZero() {
		fmt.Fprintf(w, "; not ranked yet\n")
	} else {
		fmt.Fprintf(w, "; ranked %d swarms (%d with figures) %s ago, next in %s; %d trackers (%d failing)\n",
			ap.Ranked, ap.Scored, ago(now, ap.LastRank), until(now, ap.NextRank), ap.Trackers, ap.Failing)
	}
	for _, n := range []string{ap.Note, ap.Error} {
		if n != "" {
			fmt.Fprintf(w, "\t%s\n", termSafe(n))
		}
	}
}

// printTracker prints the embedded tracker's line of the status, if it
// runs.
func printTracker(w io.Writer, tr *api.TrackerState) {
	if tr == nil {
		return
	}
	mode := "open"
	if !tr.Open {
		mode = fmt.Sprintf("whitelist of %d", tr.Whitelisted)
	}
	fmt.Fprintf(w, "tracker	%s (%s): %d torrents, %d seeds, %d partial seeds, %d downloaders; %.1f announces/s, %.1f scrapes/s",
		termSafe(tr.AnnounceURL), mode, tr.Torrents, tr.Seeds, tr.PartialSeeds, tr.Downloaders, tr.AnnouncesPerSecond, tr.ScrapesPerSecond)
	if len(tr.SyncPeers) > 0 {
		fmt.Fprintf(w, "; syncing with %s", strings.Join(tr.SyncPeers, ", "))
	}
	fmt.Fprintln(w)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func rate(n int64) string {
	if n <= 0 {
		return "unlimited"
	}
	return fmtBytes(n) + "/s"
}

func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Ensure that the embedded defaults parse, validate and keep their values.
func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.Cache.Size != 256<<20 {
		t.Errorf("cache.size = %v, want 256MiB", c.Cache.Size)
	}
	if c.API.Listen != "127.0.0.1:7979" || !c.API.Listen.IsLoopback() {
		t.Errorf("api.listen = %q, want loopback 127.0.0.1:7979", c.API.Listen)
	}
	if c.Peer.DHT || c.Peer.PEX || c.Peer.PortForwarding || c.Peer.UTP {
		t.Errorf("discovery must default off: %+v", c.Peer)
	}
	if c.Peer.CompressZstd != 2 || c.Peer.CompressLZ4 != 1 {
		t.Errorf("compression priorities zstd %d lz4 %d, want 2 and 1", c.Peer.CompressZstd, c.Peer.CompressLZ4)
	}
	if c.Feeds.Schedule != "@every 15m" || c.Repeater.VisitTime.Std() != 6*time.Hour {
		t.Errorf("feeds.schedule %q visit_time %v", c.Feeds.Schedule, c.Repeater.VisitTime)
	}
	if c.Feeds.AllowPrivateRedirects {
		t.Error("feeds.allow_private_redirects must default off")
	}
	if tr := c.Tracker; tr.Enabled || tr.SyncMulticast || tr.Open || len(tr.SyncPeers) != 0 || tr.Interval.Std() != 30*time.Minute || tr.HTTPListen != ":6969" {
		t.Errorf("tracker defaults %+v: must be off, closed, without sync or multicast", tr)
	}
	a := c.Auto
	if !a.Enabled || a.Interval.Std() != 5*time.Minute || a.Hysteresis != 1.5 || a.Cooldown.Std() != time.Hour ||
		a.MinScore != 0.5 || a.ScrapeMaxAge >= a.Interval || a.Candidates != 1000 {
		t.Errorf("auto defaults %+v", a)
	}
}

// Ensure that parsing the default file itself gives the defaults.
func TestParseDefaultFile(t *testing.T) {
	c, err := Parse("default.toml", DefaultTOML)
	if err != nil {
		t.Fatal(err)
	}
	if c.Peer != Default().Peer {
		t.Errorf("peer section differs from defaults")
	}
}

func TestParseOverrides(t *testing.T) {
	c, err := Parse("x.toml", []byte(`
[peer]
listen = "127.0.0.2:0"
upload_limit = "2MiB/s"
download_limit = 1000

[cache]
size = "16MiB"

[repeater]
visit_time = "2d"

[feeds]
allow_private_redirects = true

[[feeds.feed]]
name = "a"
url = "http://127.0.0.1:1/rss"

[[feeds.feed]]
dir = "/tmp/watch"
schedule = "@hourly"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Peer.UploadLimit != 2<<20 || c.Peer.DownloadLimit != 1000 {
		t.Errorf("limits %v %v", c.Peer.UploadLimit, c.Peer.DownloadLimit)
	}
	if c.Repeater.SwarmCache != 16<<20 {
		t.Errorf("swarm_cache should clamp to cache.size, got %v", c.Repeater.SwarmCache)
	}
	if c.Repeater.VisitTime.Std() != 48*time.Hour {
		t.Errorf("visit_time %v", c.Repeater.VisitTime)
	}
	f := c.Feeds.Feed
	if len(f) != 2 || f[0].Kind != "rss" || f[0].Schedule != "@every 15m" || f[1].Kind != "watch" || f[1].Schedule != "@hourly" {
		t.Errorf("feeds %+v", f)
	}
	if c.DataDir != "" {
		t.Errorf("data_dir %q", c.DataDir)
	}
	if !c.Feeds.AllowPrivateRedirects {
		t.Error("feeds.allow_private_redirects = true not read")
	}
}

// Ensure that every kind of bad value is reported with file, line, key and reason.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, text string
		line       int
		key, want  string
	}{
		{"unknown key", "[peer]\nlisten = \"0.0.0.0:1\"\nuplod_limit = \"1MiB\"\n", 3, "peer.uplod_limit", `did you mean "peer.upload_limit"`},
		{"unknown section", "[nope]\nx = 1\n", 1, "nope", "unknown key"},
		{"bad size", "\n[cache]\nsize = \"256MeB\"\n", 3, "cache.size", "unknown unit"},
		{"bad size number", "[cache]\nsize = \"MiB\"\n", 2, "cache.size", "want a number"},
		{"bad duration", "[repeater]\nvisit_time = \"soon\"\n", 2, "repeater.visit_time", "duration"},
		{"bad address", "[api]\nlisten = \"127.0.0.1\"\n", 2, "api.listen", "host:port"},
		{"bad port", "[peer]\nlisten = \"0.0.0.0:70000\"\n", 2, "peer.listen", "port"},
		{"host name", "[peer]\nlisten = \"example.org:1\"\n", 2, "peer.listen", "not an IP"},
		{"bad cron", "[feeds]\nschedule = \"every day\"\n", 2, "feeds.schedule", "cron"},
		{"bad level", "[log]\nlevel = \"loud\"\n", 2, "log.level", `"loud" is not one of`},
		{"small cache", "[cache]\nsize = \"1kB\"\n", 2, "cache.size", "minimum"},
		{"public api no token", "[api]\nlisten = \"0.0.0.0:7979\"\n", 2, "api.listen", "set api.token"},
		{"short token", "[api]\ntoken = \"abc\"\n", 2, "api.token", "at least 16"},
		{"feed without url", "[[feeds.feed]]\nname = \"x\"\n\n[[feeds.feed]]\nname = \"y\"\n", 1, "feeds.feed[0].url", "needs url"},
		{"second feed bad regex", "[[feeds.feed]]\nurl = \"http://a/\"\n[[feeds.feed]]\nurl = \"http://b/\"\ninclude = \"(\"\n", 5, "feeds.feed[1].include", "regular expression"},
		{"auto interval", "[auto]\ninterval = \"10ms\"\n", 2, "auto.interval", "minimum of 1s"},
		{"auto hysteresis", "\n[auto]\nhysteresis = 0.9\n", 3, "auto.hysteresis", "below 1"},
		{"auto min_score", "[auto]\nmin_score = -1.0\n", 2, "auto.min_score", "negative"},
		{"auto scrape rate", "[auto]\nscrape_rate = -2.0\n", 2, "auto.scrape_rate", "per second"},
		{"auto candidates", "[auto]\ncandidates = 0\n", 2, "auto.candidates", "outside"},
		{"auto unknown", "[auto]\ncooldwn = \"1h\"\n", 2, "auto.cooldwn", `did you mean "auto.cooldown"`},
		{"master no url", "[master]\nkind = \"transmission\"\n", 1, "master.url", "http(s) URL"},
		{"master bad kind", "[master]\nkind = \"deluge\"\nurl = \"http://h/\"\n", 2, "master.kind", "not one of"},
		{"master two passwords", "[master]\npassword = \"a\"\npassword_file = \"/p\"\n", 3, "master.password_file", "keep one"},
		{"master bad include", "[master]\ninclude = \"[\"\n", 2, "master.include", "regular expression"},
		{"master bad peer address", "[master]\npeer_address = \"nas.local\"\n", 2, "master.peer_address", "IP:PORT"},
		{"master negative linger", "[master]\nlinger = \"-1m\"\n", 2, "master.linger", "negative"},
		{"tracker without whitelist", "[tracker]\nenabled = true\n", 1, "tracker.whitelist", "open = true"},
		{"tracker whitelist and open", "[tracker]\nenabled = true\nwhitelist = \"/w\"\nopen = true\n", 4, "tracker.open", "not both"},
		{"tracker no listener", "[tracker]\nenabled = true\nopen = true\nhttp_listen = \"\"\nudp_listen = \"\"\n", 4, "tracker.http_listen", "udp_listen or both"},
		{"tracker bad listen", "[tracker]\nudp_listen = \"6969\"\n", 2, "tracker.udp_listen", "host:port"},
		{"tracker bad url", "[tracker]\npublic_url = \"ftp://x/announce\"\n", 2, "tracker.public_url", "announce URL"},
		{"tracker bad sync peer", "[tracker]\nsync_peers = [\"192.0.2.1:9696\", \"tracker.example.org:9696\"]\n", 2, "tracker.sync_peers[1]", "ip:port"},
		{"tracker short sync key", "[tracker]\nsync_key = \"secret\"\n", 2, "tracker.sync_key", "at least 16"},
		{"tracker plain multicast", "[tracker]\nsync_multicast = true\n", 2, "tracker.sync_multicast", "set sync_key"},
		{"tracker multicast port", "[tracker]\nsync_multicast = true\nsync_key = \"0123456789abcdef\"\nsync_listen = \":9697\"\n", 4, "tracker.sync_listen", "port 9696"},
		{"tracker interval", "[tracker]\ninterval = \"0s\"\n", 2, "tracker.interval", "minimum"},
		{"wrong type", "[peer]\ndht = \"yes\"\n", 2, "peer.dht", "incompatible"},
		{"compression priority", "[peer]\ncompress_zstd = 256\n", 2, "peer.compress_zstd", "outside 0..255"},
		{"syntax", "[peer\n", 2, "", "expected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.toml", []byte(tc.text))
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("want Errors, got %v", err)
			}
			e := errs[0]
			if e.File != "bad.toml" || e.Line != tc.line || e.Key != tc.key || !strings.Contains(e.Reason, tc.want) {
				t.Errorf("got %q (line %d key %q), want line %d key %q reason containing %q", e.Error(), e.Line, e.Key, tc.line, tc.key, tc.want)
			}
			if !strings.HasPrefix(e.Error(), "bad.toml:") {
				t.Errorf("message %q does not start with file:line", e.Error())
			}
		})
	}
}

// Ensure that all problems in one file are reported at once, in line order.
func TestParseReportsAll(t *testing.T) {
	_, err := Parse("f", []byte("[log]\nlevel = \"x\"\nformat = \"y\"\n[peer]\nbogus = 1\n"))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	for i, want := range []int{2, 3, 5} {
		if errs[i].Line != want {
			t.Errorf("error %d at line %d, want %d", i, errs[i].Line, want)
		}
	}
}

func TestSizeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Size
	}{{"0", 0}, {"256MiB", 256 << 20}, {"1.5GiB", 3 << 29}, {"500kB", 500000}, {"12", 12}, {"4 KiB", 4096}, {"2m", 2 << 20}} {
		got, err := ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		back, err := ParseSize(got.String())
		if err != nil || back != got {
			t.Errorf("%q: String %q does not parse back (%v, %v)", tc.in, got.String(), back, err)
		}
	}
	for _, bad := range []string{"", "-1", "1XB", "1..2MiB", "9999999TiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) should fail", bad)
		}
	}
}

func TestRate(t *testing.T) {
	var r Rate
	for _, in := range []string{"2MiB/s", "2MiB", "2MiBps"} {
		if err := r.UnmarshalText([]byte(in)); err != nil || r != 2<<20 {
			t.Errorf("%q: %v %v", in, r, err)
		}
	}
	if r.String() != "2MiB/s" || Rate(0).String() != "0" || !Rate(0).Unlimited() {
		t.Errorf("rate strings %q %q", r.String(), Rate(0).String())
	}
}

func TestLocate(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"HOME": dir, "XDG_CONFIG_HOME": filepath.Join(dir, "cfg")}
	getenv := func(k string) string { return env[k] }

	if p, err := Locate("", getenv); err != nil || p != "" {
		t.Fatalf("no file: got %q %v, want defaults", p, err)
	}
	def := DefaultFile(getenv)
	if def != filepath.Join(dir, "cfg", "btslave", "btslave.toml") {
		t.Fatalf("DefaultFile %q", def)
	}
	os.MkdirAll(filepath.Dir(def), 0o755)
	os.WriteFile(def, DefaultTOML, 0o644)
	if p, _ := Locate("", getenv); p != def {
		t.Errorf("xdg file not found: %q", p)
	}
	env[EnvConfig] = filepath.Join(dir, "missing.toml")
	if _, err := Locate("", getenv); err == nil {
		t.Errorf("explicit missing $BTSLAVE_CONFIG must be an error")
	}
	if p, err := Locate(def, getenv); err != nil || p != def {
		t.Errorf("flag beats env: %q %v", p, err)
	}

	c := Default()
	if err := c.ResolveDataDir("", getenv); err != nil || c.DataDir != filepath.Join(dir, ".local", "share", "btslave") {
		t.Errorf("data dir %q %v", c.DataDir, err)
	}
	c.DataDir = "rel"
	c.ResolveDataDir("/flag", getenv)
	if c.DataDir != "/flag" {
		t.Errorf("flag must win: %q", c.DataDir)
	}
}

func TestRedactedEncode(t *testing.T) {
	c := Default()
	c.API.Token = "0123456789abcdef0123"
	c.Tracker.SyncKey = "the sync group's secret"
	red, err := c.Redacted().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(red), "0123456789abcdef") || strings.Contains(string(red), "group's secret") {
		t.Errorf("token or sync key leaked into printed config")
	}
	if c.API.Token != "0123456789abcdef0123" {
		t.Errorf("Redacted modified the original")
	}
	// The encoded effective config must itself be a valid config.
	out, _ := c.Encode()
	if _, err := Parse("printed", out); err != nil {
		t.Errorf("printed config does not parse: %v\n%s", err, out)
	}
}

// FuzzParse checks that no input makes Parse panic, and that a config it
// accepts survives an encode/parse round trip.
func FuzzParse(f *testing.F) {
	f.Add(DefaultTOML)
	f.Add([]byte("[peer]\nlisten = \"1.2.3.4:5\"\n[[feeds.feed]]\nurl = \"http://x/\"\n"))
	f.Add([]byte("[cache]\nsize = \"1e9GiB\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		out, err := c.Encode()
		if err != nil {
			t.Fatalf("encode accepted config: %v", err)
		}
		if _, err := Parse("again", out); err != nil {
			t.Fatalf("re-parse of accepted config failed: %v\n%s", err, out)
		}
	})
}

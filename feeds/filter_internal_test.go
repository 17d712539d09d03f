package feeds

import (
	"testing"
	"time"

	"github.com/btslave/btslave/config"
)

// Ensure that each filter keeps or drops an item and says why.
func TestFilter(t *testing.T) {
	now := time.Date(2024, 2, 12, 0, 0, 0, 0, time.UTC)
	const GiB = 1 << 30
	for _, tc := range []struct {
		name string
		feed config.Feed
		c    candidate
		kept bool
		why  string
	}{
		{"no filters", config.Feed{}, candidate{title: "anything", final: true}, true, "kept"},
		{"include match", config.Feed{Include: "(?i)debian"}, candidate{title: "Debian 12", final: true}, true, "kept"},
		{"include miss", config.Feed{Include: "(?i)debian"}, candidate{title: "Fedora 40", final: true}, false, "not matched by include /(?i)debian/"},
		{"exclude", config.Feed{Exclude: "beta"}, candidate{title: "Fedora 41 beta", final: true}, false, `excluded by exclude /beta/ (matched "beta")`},
		{"exclude wins over include", config.Feed{Include: "Fedora", Exclude: "beta"}, candidate{title: "Fedora beta", final: true}, false, `excluded by exclude /beta/ (matched "beta")`},
		{"title unknown yet", config.Feed{Include: "debian"}, candidate{}, true, "kept"},
		{"title empty when final", config.Feed{Include: "debian"}, candidate{final: true}, false, "not matched by include /debian/"},
		{"over max", config.Feed{MaxSize: 10 * GiB}, candidate{title: "x", size: 12 * GiB, final: true}, false, "size 12 GiB over max 10 GiB"},
		{"under min", config.Feed{MinSize: 100 << 20}, candidate{title: "x", size: 50 << 20, final: true}, false, "size 50 MiB under min 100 MiB"},
		{"within", config.Feed{MinSize: 100 << 20, MaxSize: 10 * GiB}, candidate{title: "x", size: 3 * GiB / 2, final: true}, true, "kept"},
		{"size unknown", config.Feed{MaxSize: 10 * GiB}, candidate{title: "x", final: true}, true, "kept (size unknown, size filters not applied)"},
		{"size unknown before resolution", config.Feed{MaxSize: 10 * GiB}, candidate{title: "x"}, true, "kept"},
		{"category name", config.Feed{Category: "linux"}, candidate{title: "x", categories: []string{"Linux"}, final: true}, true, "kept"},
		{"category sub", config.Feed{Category: "2000"}, candidate{title: "x", categories: []string{"2040"}, final: true}, true, "kept"},
		{"category list", config.Feed{Category: "5000, 2000"}, candidate{title: "x", categories: []string{"2040"}, final: true}, true, "kept"},
		{"category miss", config.Feed{Category: "2000"}, candidate{title: "x", categories: []string{"5040", "100001"}, final: true}, false, "category 5040, 100001 is not 2000"},
		{"category not parent", config.Feed{Category: "2040"}, candidate{title: "x", categories: []string{"2000"}, final: true}, false, "category 2000 is not 2040"},
		{"category none", config.Feed{Category: "2000"}, candidate{title: "x", final: true}, false, "no category; want 2000"},
		{"too old", config.Feed{MaxAge: config.Duration(7 * 24 * time.Hour)}, candidate{title: "x", published: now.Add(-9 * 24 * time.Hour), final: true}, false, "published 9d ago, older than max_age 7d"},
		{"young", config.Feed{MaxAge: config.Duration(7 * 24 * time.Hour)}, candidate{title: "x", published: now.Add(-time.Hour), final: true}, true, "kept"},
		{"age unknown", config.Feed{MaxAge: config.Duration(7 * 24 * time.Hour)}, candidate{title: "x", final: true}, true, "kept (publication date unknown, max_age not applied)"},
		{"both unknown", config.Feed{MaxSize: GiB, MaxAge: config.Duration(time.Hour)}, candidate{title: "x", final: true}, true, "kept (size unknown, size filters not applied; publication date unknown, max_age not applied)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := newFilter(&tc.feed)
			if err != nil {
				t.Fatal(err)
			}
			kept, why := f.check(tc.c, now)
			if kept != tc.kept || why != tc.why {
				t.Errorf("check = %v, %q; want %v, %q", kept, why, tc.kept, tc.why)
			}
		})
	}
}

func TestFmtSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 700: "700 B", 1536: "1.5 KiB", 8 << 20: "8 MiB", 12 << 30: "12 GiB", 3 << 29: "1.5 GiB"} {
		if got := fmtSize(n); got != want {
			t.Errorf("fmtSize(%d) = %q, want %q", n, got, want)
		}
	}
}

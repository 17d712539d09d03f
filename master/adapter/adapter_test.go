package adapter_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/btslave/btslave/config"
	"github.com/btslave/btslave/master/adapter"
)

func TestNew(t *testing.T) {
	if c, _, err := adapter.New(config.Master{}); c != nil || err != nil {
		t.Errorf("no kind: %v, %v; want none", c, err)
	}
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("secret\n"), 0o600)
	for _, kind := range []string{"transmission", "qbittorrent", "btslave"} {
		c, f, err := adapter.New(config.Master{Kind: kind, URL: "http://127.0.0.1:9091/", PasswordFile: pw, Exclude: `\.sample$`})
		if err != nil || c == nil || c.Kind() != kind || f.Exclude == nil {
			t.Errorf("%s: %v, %v", kind, c, err)
		}
	}
	if _, _, err := adapter.New(config.Master{Kind: "transmission", URL: "http://h/", PasswordFile: "/nonexistent"}); err == nil {
		t.Error("a missing password_file is accepted")
	}
}

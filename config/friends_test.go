package config

import (
	"strings"
	"testing"
)

func TestFriendsConfig(t *testing.T) {
	c, err := Parse("t.toml", []byte("[friends]\nenabled = true\nlisten = \"127.0.0.2:7980\"\naccept = \"auto\"\ncredit_limit = \"1GiB\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Friends.Accept != "auto" || c.Friends.CreditLimit != 1<<30 || c.Friends.FriendsAddress() != "127.0.0.2:7980" {
		t.Fatalf("got %+v", c.Friends)
	}
	for in, key := range map[string]string{
		"accept = \"maybe\"":                       "friends.accept",
		"starter_credit = \"3GiB\"":                "friends.starter_credit",
		"credit_limit = -1":                        "friends.credit_limit",
		"invite_ttl = \"1s\"":                      "friends.invite_ttl",
		"enabled = true":                           "friends.address", // listen 0.0.0.0 and no address
		"enabled = true\nlisten = \"127.0.0.1:0\"": "friends.listen",
		"enabled = true\naddress = \"10.0.0.1\"":   "friends.address",
		"enabled = true\naddress = \"10.0.0.1:0\"": "friends.address",
	} {
		_, err := Parse("t.toml", []byte("[friends]\n"+in+"\n"))
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: err %v, want one about %s", in, err, key)
		}
	}
}

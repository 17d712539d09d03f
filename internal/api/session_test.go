package api

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const sessToken = "0123456789abcdef0123456789abcdef"

// startWeb runs a server with a UI and an AddFeed that records calls.
func startWeb(t *testing.T) (base string, added *int) {
	t.Helper()
	n := 0
	s, err := Listen(ServerOptions{
		Listen: "127.0.0.1:0",
		Token:  sessToken,
		Status: func(context.Context) Status { return Status{Version: "v-test"} },
		AddFeed: func(_ context.Context, req FeedRequest) (Feed, error) {
			n++
			return Feed{Name: req.URL, Added: true}, nil
		},
		UI: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "dashboard") }),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + s.Addr().String(), &n
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}

func send(t *testing.T, method, url string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// login gets a one-time code with the token and trades it for a session
// cookie, checking the cookie's attributes and that the code works once.
func login(t *testing.T, base string) *http.Cookie {
	t.Helper()
	c := NewClient(strings.TrimPrefix(base, "http://"), sessToken)
	lc, err := c.LoginCode(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(lc.Path, sessToken) {
		t.Fatal("the token is in the login URL")
	}
	resp := send(t, "GET", base+lc.Path, nil, "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	var ck *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == SessionCookie {
			ck = k
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Value == "" || ck.Value == sessToken {
		t.Fatalf("session cookie %+v", ck)
	}
	if again := send(t, "GET", base+lc.Path, nil, ""); again.StatusCode != http.StatusUnauthorized || len(again.Cookies()) != 0 {
		t.Fatalf("a used code answered %s", again.Status)
	}
	return ck
}

// Ensure the one-time code logs a browser in once, and the session cookie
// then reads the API and the UI.
func TestSessionLogin(t *testing.T) {
	base, _ := startWeb(t)
	if r := send(t, "POST", base+"/api/v1/web/login-code", nil, "{}"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("login code without the token: %s", r.Status)
	}
	if r := send(t, "GET", base+"/login?code=deadbeef", nil, ""); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("made-up code: %s", r.Status)
	}
	if r := send(t, "GET", base+"/", nil, ""); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Fatalf("UI without a session: %s %q", r.Status, r.Header.Get("Location"))
	}
	if r := send(t, "GET", base+"/api/v1/status", nil, ""); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API without a session: %s", r.Status)
	}
	ck := login(t, base)
	cookie := map[string]string{"Cookie": ck.Name + "=" + ck.Value}
	for _, p := range []string{"/", "/api/v1/status"} {
		if r := send(t, "GET", base+p, cookie, ""); r.StatusCode != http.StatusOK {
			t.Errorf("GET %s with the session: %s", p, r.Status)
		}
	}
	if r := send(t, "GET", base+"/api/v1/status", map[string]string{"Cookie": ck.Name + "=forged"}, ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged session: %s", r.Status)
	}
	// Logging out ends the session.
	host := strings.TrimPrefix(base, "http://")
	if r := send(t, "POST", base+"/logout", map[string]string{"Cookie": cookie["Cookie"], "Origin": base}, ""); r.StatusCode != http.StatusSeeOther {
		t.Errorf("logout: %s", r.Status)
	}
	if r := send(t, "GET", base+"/api/v1/status", cookie, ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("after logout: %s (host %s)", r.Status, host)
	}
}

// Ensure the token logs in through the form (POST, same origin only).
func TestSessionTokenForm(t *testing.T) {
	base, _ := startWeb(t)
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": base}
	if r := send(t, "POST", base+"/login", form, "token=wrong"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %s", r.Status)
	}
	r := send(t, "POST", base+"/login", form, "token="+sessToken)
	if r.StatusCode != http.StatusSeeOther || len(r.Cookies()) != 1 {
		t.Errorf("right token: %s, cookies %v", r.Status, r.Cookies())
	}
	form["Origin"] = "http://evil.example"
	if r := send(t, "POST", base+"/login", form, "token="+sessToken); r.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin login: %s", r.Status)
	}
}

// Ensure a mutating request with the session cookie passes only from the
// dashboard's own origin, no answer carries CORS headers, and a foreign
// Host is refused before anything else.
func TestSessionOrigin(t *testing.T) {
	base, added := startWeb(t)
	ck := login(t, base)
	c := ck.Name + "=" + ck.Value
	body := `{"url":"http://127.0.0.1:1/rss"}`
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"no origin", map[string]string{"Cookie": c}, http.StatusForbidden},
		{"foreign origin", map[string]string{"Cookie": c, "Origin": "http://evil.example"}, http.StatusForbidden},
		{"other port", map[string]string{"Cookie": c, "Origin": "http://127.0.0.1:1"}, http.StatusForbidden},
		{"cross-site fetch", map[string]string{"Cookie": c, "Origin": base, "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same origin", map[string]string{"Cookie": c, "Origin": base, "Sec-Fetch-Site": "same-origin"}, http.StatusCreated},
		{"rebound host", map[string]string{"Cookie": c, "Origin": "http://evil.example", "Host": "evil.example"}, http.StatusMisdirectedRequest},
	} {
		r := send(t, "POST", base+"/api/v1/feeds", tc.hdr, body)
		if r.StatusCode != tc.want {
			t.Errorf("%s: %s, want %d", tc.name, r.Status, tc.want)
		}
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("%s: CORS header %s", tc.name, k)
			}
		}
	}
	if *added != 1 {
		t.Errorf("AddFeed ran %d times, want 1 (same origin only)", *added)
	}
	r := send(t, "OPTIONS", base+"/api/v1/feeds", map[string]string{"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}, "")
	for k := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") {
			t.Errorf("preflight: CORS header %s", k)
		}
	}
}

// Ensure codes expire and the tables stay bounded.
func TestSessionExpiry(t *testing.T) {
	s := newSessions()
	now := time.Unix(1e9, 0)
	s.now = func() time.Time { return now }
	lc := s.newCode()
	now = now.Add(CodeTTL + time.Second)
	if s.useCode(lc.Code) {
		t.Error("an expired code worked")
	}
	for i := 0; i < 3*maxSessions; i++ {
		s.newSession()
		s.newCode()
	}
	if len(s.ids) > maxSessions || len(s.codes) > maxCodes {
		t.Errorf("%d sessions, %d codes", len(s.ids), len(s.codes))
	}
	id := s.newSession()
	now = now.Add(SessionTTL + time.Second)
	if s.valid(id) {
		t.Error("an expired session is valid")
	}
}

package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The dashboard's login. The API token logs a browser in once and becomes
// a session cookie (HttpOnly, SameSite=Strict); "btslave web" asks for a
// one-time code instead (POST /api/v1/web/login-code, with the token) and
// prints a /login?code= URL, so that the token itself never goes into a
// URL. A code is good for CodeTTL and consumed on first use.
const (
	// SessionCookie is the session cookie's name.
	SessionCookie = "btslave_session"
	// CodeTTL is how long a one-time login code is good for.
	CodeTTL = 2 * time.Minute
	// SessionTTL is how long a session lasts without a request.
	SessionTTL = 7 * 24 * time.Hour
	// maxSessions and maxCodes bound the tables (oldest dropped first).
	maxSessions = 64
	maxCodes    = 16
)

// LoginCode is the answer of POST /api/v1/web/login-code.
type LoginCode struct {
	Code    string    `json:"code"`
	Path    string    `json:"path"` // "/login?code=..."
	Expires time.Time `json:"expires"`
}

// sessions holds the one-time codes and the sessions, in memory: a
// restart logs every browser out.
type sessions struct {
	mu    sync.Mutex
	codes map[string]time.Time // code -> expiry
	ids   map[string]time.Time // session id -> expiry
	now   func() time.Time
}

func newSessions() *sessions {
	return &sessions{codes: map[string]time.Time{}, ids: map[string]time.Time{}, now: time.Now}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// dropOldest removes expired entries and, past limit, the one expiring
// first.
func dropOldest(m map[string]time.Time, now time.Time, limit int) {
	for k, exp := range m {
		if !now.Before(exp) {
			delete(m, k)
		}
	}
	for len(m) >= limit {
		var oldest string
		for k, exp := range m {
			if oldest == "" || exp.Before(m[oldest]) {
				oldest = k
			}
		}
		delete(m, oldest)
	}
}

func (s *sessions) newCode() LoginCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	dropOldest(s.codes, now, maxCodes)
	c := randomHex(16)
	s.codes[c] = now.Add(CodeTTL)
	return LoginCode{Code: c, Path: "/login?code=" + c, Expires: now.Add(CodeTTL)}
}

// useCode consumes code and reports whether it was good.
func (s *sessions) useCode(code string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.codes[code]
	if !ok {
		return false
	}
	delete(s.codes, code)
	return s.now().Before(exp)
}

func (s *sessions) newSession() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	dropOldest(s.ids, now, maxSessions)
	id := randomHex(32)
	s.ids[id] = now.Add(SessionTTL)
	return id
}

// valid reports whether id is a live session, and extends it.
func (s *sessions) valid(id string) bool {
	if id == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.ids[id]
	now := s.now()
	if !ok || !now.Before(exp) {
		delete(s.ids, id)
		return false
	}
	s.ids[id] = now.Add(SessionTTL)
	return true
}

func (s *sessions) end(id string) {
	s.mu.Lock()
	delete(s.ids, id)
	s.mu.Unlock()
}

// session returns the request's live session id, or "".
func (s *Server) session(r *http.Request) string {
	c, err := r.Cookie(SessionCookie)
	if err != nil || !s.sess.valid(c.Value) {
		return ""
	}
	return c.Value
}

// safeMethod: requests that change nothing.
func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// sameOrigin reports whether a browser's request comes from the
// dashboard's own origin: its Origin header must name this scheme and
// Host exactly. A request without Origin is refused: every browser sends
// one with a POST, PUT or DELETE.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme != "http" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Path != "" && u.Path != "/" {
		return false
	}
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" && sfs != "same-origin" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

func (s *Server) setSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: s.sess.newSession(), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: int(SessionTTL / time.Second)})
}

// handleLogin answers /login, which needs no session: GET with a one-time
// code logs in and goes to the dashboard; GET without one shows the login
// form; POST with the token (the form) logs in.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		code := r.URL.Query().Get("code")
		if code == "" {
			loginPage(w, http.StatusOK, "")
			return
		}
		if !s.sess.useCode(code) {
			s.opts.Logger.Warn("api: refused a used or expired login code", "remote", r.RemoteAddr)
			loginPage(w, http.StatusUnauthorized, "This login link was used already or has expired. Run 'btslave web' for a new one, or log in with the API token.")
			return
		}
		s.setSession(w)
		http.Redirect(w, r, "/", http.StatusSeeOther)
	case http.MethodPost:
		if !sameOrigin(r) {
			writeError(w, http.StatusForbidden, "cross-origin login refused")
			return
		}
		tok := r.PostFormValue("token")
		if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.opts.Token)) != 1 {
			loginPage(w, http.StatusUnauthorized, "Wrong token. It is in api.token in the data dir.")
			return
		}
		s.setSession(w)
		http.Redirect(w, r, "/", http.StatusSeeOther)
	default:
		writeError(w, http.StatusMethodNotAllowed, "GET or POST")
	}
}

// handleLogout ends the session (POST /logout, same origin).
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		s.sess.end(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) handleLoginCode(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.sess.newCode())
}

func loginPage(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(code)
	p := ""
	if msg != "" {
		p = `<p class="err">` + html.EscapeString(msg) + `</p>`
	}
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>btslave: log in</title><style>body{font:16px system-ui,sans-serif;max-width:30em;margin:3em auto;padding:0 1em}
input{width:100%%;font:inherit;padding:.4em;box-sizing:border-box}button{font:inherit;margin-top:.6em;padding:.4em 1em}.err{color:#b00}code{background:#eee;padding:0 .2em}</style></head>
<body><h1>btslave</h1>%s<p>Run <code>btslave web</code> for a one-time login link, or paste the API token (the file <code>api.token</code> in the data dir).</p>
<form method="post" action="/login"><label>API token <input type="password" name="token" autocomplete="current-password" required></label><button type="submit">Log in</button></form></body></html>
`, p)
}

// LoginCode makes a one-time login code, as POST /api/v1/web/login-code
// does (for a program that runs the server itself, as "btslave demo --web").
func (s *Server) LoginCode() LoginCode { return s.sess.newCode() }

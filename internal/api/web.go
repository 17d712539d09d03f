package api

import (
	"encoding/json"
	"net/http"
	"strings"
)

// mountWeb adds the dashboard's routes: the login, the one-time codes, the
// feed test and the UI itself at "/" (unknown /api/ paths stay JSON 404s).
func (s *Server) mountWeb(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/web/login-code", s.handleLoginCode)
	mux.HandleFunc("POST /logout", s.handleLogout)
	mux.HandleFunc("/login", s.handleLogin)
	if s.opts.TestFeed != nil {
		mux.HandleFunc("POST /api/v1/feeds/test", s.handleTestFeed)
	}
	notFound := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	}
	mux.HandleFunc("/api/", notFound)
	if s.opts.UI != nil {
		mux.Handle("/", s.opts.UI)
	} else {
		mux.HandleFunc("/", notFound)
	}
}

// browserAuth lets a request without the bearer token through when it
// carries a live session cookie, and a mutating one only from the
// dashboard's own origin; it answers /login itself, and sends a browser
// without a session from a page of the UI to /login. It reports whether
// the request goes on, was answered, or is to be refused 401.
func (s *Server) browserAuth(w http.ResponseWriter, r *http.Request) browserVerdict {
	if r.URL.Path == "/login" {
		s.handleLogin(w, r)
		return browserAnswered
	}
	if s.session(r) != "" {
		if !safeMethod(r.Method) && !sameOrigin(r) {
			s.opts.Logger.Warn("api: refused a cross-origin request", "origin", r.Header.Get("Origin"), "path", r.URL.Path, "remote", r.RemoteAddr)
			writeError(w, http.StatusForbidden, "cross-origin request refused: the Origin header must be this dashboard's")
			return browserAnswered
		}
		return browserOK
	}
	if s.opts.UI != nil && safeMethod(r.Method) && !strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/metrics" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return browserAnswered
	}
	return browserRefused
}

type browserVerdict int

const (
	browserRefused browserVerdict = iota
	browserOK
	browserAnswered
)

func (s *Server) handleTestFeed(w http.ResponseWriter, r *http.Request) {
	var req FeedRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return
	}
	res, err := s.opts.TestFeed(r.Context(), req)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// FeedTest is the answer of POST /api/v1/feeds/test: every item the feed
// listed, kept or not, and why.
type FeedTest struct {
	Feed        string         `json:"feed"`
	NotModified bool           `json:"not_modified,omitempty"`
	Items       []FeedTestItem `json:"items"`
	Kept        int            `json:"kept"`
}

// FeedTestItem is one item of a FeedTest.
type FeedTestItem struct {
	Title    string `json:"title"`
	Size     int64  `json:"size,omitempty"`
	InfoHash string `json:"infohash,omitempty"`
	Kept     bool   `json:"kept"`
	Error    bool   `json:"error,omitempty"`
	Why      string `json:"why"`
}

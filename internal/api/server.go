package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StatusFunc produces the current status.
type StatusFunc func(ctx context.Context) Status

// ServerOptions configures a Server.
type ServerOptions struct {
	Listen string // host:port
	Token  string // required
	Status StatusFunc
	// Repeat joins a swarm; Leave leaves one (hex info hash). Errors
	// wrapping ErrBadRequest are the caller's fault (400).
	Repeat func(ctx context.Context, req RepeatRequest) (Torrent, error)
	Leave  func(ctx context.Context, infoHash string) error
	// Ranking answers GET /api/v1/ranking.
	Ranking func(ctx context.Context) Ranking
	// Feeds lists the feeds; AddFeed and RemoveFeed change those added at
	// run time. Errors wrapping ErrBadRequest are the caller's fault.
	Feeds      func(ctx context.Context) []Feed
	AddFeed    func(ctx context.Context, req FeedRequest) (Feed, error)
	RemoveFeed func(ctx context.Context, name string) error
	// FeedItems lists what a feed put in the catalog; an unknown feed is
	// ErrNotFound.
	FeedItems func(ctx context.Context, name string) ([]FeedItem, error)
	// TestFeed fetches a feed once and says what its filters keep
	// (POST /api/v1/feeds/test), as "btslave feeds test" does.
	TestFeed func(ctx context.Context, req FeedRequest) (FeedTest, error)
	// UI is the dashboard, served at "/" to logged-in browsers (see
	// session.go); nil serves none.
	UI http.Handler
	// Publish, Published and Unpublish are the publish endpoints
	// (publish.go). Errors wrapping ErrBadRequest are the caller's fault.
	Publish   func(ctx context.Context, req PublishRequest) (Published, error)
	Published func(ctx context.Context) []Published
	Unpublish func(ctx context.Context, infoHash string) error
	// Publishing lists the publishes under way, with their progress.
	Publishing func(ctx context.Context) []PublishJob
	Registry   *prometheus.Registry
	Logger     *slog.Logger

	// Help makes the daemon help a master with a torrent (master.go).
	Help func(ctx context.Context, req HelpRequest) (MasterTorrent, error)

	// Cashin asks friends to help our master (nil: [friends] is off).
	Cashin func(ctx context.Context, req CashinRequest) (CashinReply, error)

	// WriteTimeout bounds writing an answer (default 30 s); a publish
	// request has none.
	WriteTimeout time.Duration

	// Friends backs the friends and ledger endpoints (friends.go); nil
	// serves none.
	Friends FriendsBackend

	// AskEverseed asks a friend to be a second everseed of a published
	// torrent (publish_friend.go in the daemon).
	AskEverseed func(ctx context.Context, ih, friend string) (EverseedReply, error)
	// Mounts serves /api/v1/mounts (mount.go); nil: no mounts.
	Mounts Mounter
}

// Server is the local API server.
type Server struct {
	opts ServerOptions
	ln   net.Listener
	srv  *http.Server
	sess *sessions
}

// Listen binds the API's address. It refuses to run without a token.
func Listen(opts ServerOptions) (*Server, error) {
	if len(opts.Token) < 16 {
		return nil, errors.New("api: refusing to serve without a token of at least 16 characters")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s: %w", opts.Listen, err)
	}
	s := &Server{opts: opts, ln: ln, sess: newSessions()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/status", s.handleStatus)
	if opts.Repeat != nil {
		mux.HandleFunc("POST /api/v1/swarms", s.handleRepeat)
	}
	if opts.Leave != nil {
		mux.HandleFunc("DELETE /api/v1/swarms/{infohash}", s.handleLeave)
	}
	if opts.Ranking != nil {
		mux.HandleFunc("GET /api/v1/ranking", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, opts.Ranking(r.Context()))
		})
	}
	if opts.Feeds != nil {
		mux.HandleFunc("GET /api/v1/feeds", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, opts.Feeds(r.Context()))
		})
	}
	if opts.AddFeed != nil {
		mux.HandleFunc("POST /api/v1/feeds", s.handleAddFeed)
	}
	if opts.FeedItems != nil {
		mux.HandleFunc("GET /api/v1/feeds/{name}/items", func(w http.ResponseWriter, r *http.Request) {
			items, err := opts.FeedItems(r.Context(), r.PathValue("name"))
			answer(w, http.StatusOK, items, err)
		})
	}
	if opts.Cashin != nil {
		mux.HandleFunc("POST /api/v1/cashin", s.handleCashin)
	}
	if opts.AskEverseed != nil {
		mux.HandleFunc("POST /api/v1/published/{infohash}/everseed", s.handleEverseed)
	}
	if opts.RemoveFeed != nil {
		mux.HandleFunc("DELETE /api/v1/feeds/{name}", func(w http.ResponseWriter, r *http.Request) {
			if err := opts.RemoveFeed(r.Context(), r.PathValue("name")); err != nil {
				writeErr(w, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
	}
	s.publishRoutes(mux)
	s.friendsRoutes(mux)
	s.mountRoutes(mux)
	if opts.Help != nil {
		mux.HandleFunc("POST /api/v1/master/help", s.handleHelp)
	}
	if opts.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}))
	}
	s.mountWeb(mux)
	s.srv = &http.Server{
		Handler:           s.checkHost(s.auth(mux)),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve answers requests until ctx is done, then shuts down within 2s.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.srv.Close()
	}
	<-errc
	return nil
}

func (s *Server) auth(next http.Handler) http.Handler {
	want := []byte("Bearer " + s.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			switch s.browserAuth(w, r) {
			case browserOK:
				next.ServeHTTP(w, r)
				return
			case browserAnswered:
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="btslave"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token (see api.token in the data dir)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.opts.Status(r.Context()))
}

// ErrBadRequest marks errors that are the client's fault.
var ErrBadRequest = errors.New("bad request")

func (s *Server) handleRepeat(w http.ResponseWriter, r *http.Request) {
	var req RepeatRequest
	body := http.MaxBytesReader(w, r.Body, 2*MaxTorrentBytes) // base64 inflates
	if err := json.NewDecoder(body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return
	}
	t, err := s.opts.Repeat(r.Context(), req)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrBadRequest) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) handleLeave(w http.ResponseWriter, r *http.Request) {
	if err := s.opts.Leave(r.Context(), r.PathValue("infohash")); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleAddFeed(w http.ResponseWriter, r *http.Request) {
	var req FeedRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return
	}
	f, err := s.opts.AddFeed(r.Context(), req)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, f)
}

// writeErr answers err: 400 when it wraps ErrBadRequest, 404 when it
// wraps ErrNotFound, else 500.
func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	}
	writeError(w, code, err.Error())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

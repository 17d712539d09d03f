// Package web is btslave's dashboard: plain HTML, CSS and JavaScript
// embedded in the binary and served by the local API at "/" to a browser
// logged in with a session cookie (internal/api's session.go).
//
// A page is one file in pages/: a script that calls btslave.page({...})
// with its id, title, the API paths it reads and the functions that draw
// it (see static/app.js). The index lists every file in pages/ in name
// order, so adding a page is adding one file. Charts are drawn by
// static/chart.js, a few dozen lines on a canvas: no library is vendored
// and no node toolchain is needed.
package web

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
)

//go:embed static pages
var files embed.FS

// Pages are the page scripts, in the order the index loads them.
func Pages() []string {
	names, _ := fs.Glob(files, "pages/*.js")
	sort.Strings(names)
	return names
}

var index = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>btslave</title>
<link rel="stylesheet" href="/static/style.css">
<script src="/static/app.js" defer></script>
<script src="/static/chart.js" defer></script>
{{range .}}<script src="/{{.}}" defer></script>
{{end}}<script src="/static/start.js" defer></script>
</head>
<body>
<header><span class="brand">btslave</span><nav id="nav"></nav><span id="live" class="live"></span>
<form method="post" action="/logout" class="logout"><button type="submit">Log out</button></form></header>
<main id="main"></main>
</body>
</html>
`))

// Handler serves the dashboard: the index at "/", the static files and
// the page scripts.
func Handler() http.Handler {
	static := http.FileServerFS(files)
	pages := Pages()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		switch p := path.Clean(r.URL.Path); {
		case p == "/" || p == "/index.html":
			h.Set("Content-Type", "text/html; charset=utf-8")
			_ = index.Execute(w, pages)
		case strings.HasPrefix(p, "/static/") || strings.HasPrefix(p, "/pages/"):
			static.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// Package ui serves the memory timeline page (docs/timeline.md): a static shell — HTML,
// JavaScript and CSS embedded in the binary — that holds no data and reads everything it
// shows from the query API, with the credential its user gives it, as any API client would.
package ui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// Prefix is the root of the page's routes.
const Prefix = "/ui/"

// ContentSecurityPolicy lets the page run its own script and style and talk to its own
// origin only: no inline script, no third-party anything, no framing, no form posts.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// file is one embedded asset, with the validator the browser revalidates it by.
type file struct {
	body        []byte
	contentType string
	etag        string
}

var files = func() map[string]file {
	out := map[string]file{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(p, "assets/")] = file{body: b, contentType: contentType(p),
			etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("ui: embedded assets: " + err.Error())
	}
	return out
}()

func contentType(p string) string {
	switch path.Ext(p) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// Register mounts the page on mux: GET /ui/ (pick a user), GET /ui/users/{identifier} (the
// user's timeline) and GET /ui/assets/{name}. Each answers the same bytes whoever asks and
// whatever the identifier — the shell says nothing about any user, so it needs no
// credential, as the OpenAPI document needs none; the data it then reads from /v1 does.
func Register(mux *http.ServeMux) {
	mux.Handle("GET /ui", http.RedirectHandler(Prefix, http.StatusMovedPermanently))
	mux.Handle("GET "+Prefix+"{$}", serve("index.html"))
	mux.Handle("GET "+Prefix+"users/{identifier}", serve("index.html"))
	mux.HandleFunc("GET "+Prefix+"assets/{name}", func(w http.ResponseWriter, r *http.Request) {
		serve(r.PathValue("name")).ServeHTTP(w, r)
	})
}

// serve answers one embedded file with the page's security headers. Browsers revalidate it
// on every load (no-cache with an ETag), so a new binary's page is never mixed with an old
// script.
func serve(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		// The path holds the identifier: no other site learns it from a Referer.
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		h.Set("Content-Type", f.contentType)
		if match := r.Header.Get("If-None-Match"); match != "" && match == f.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write(f.body)
	})
}

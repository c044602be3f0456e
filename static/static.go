// Package static embeds grconnect's stylesheet, script and icons, and serves them
// under content-hashed URLs ("/static/<hash>/app.css") that may be cached forever.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
)

//go:embed files
var files embed.FS

// Assets serves the embedded files and knows their hashed URLs.
type Assets struct {
	once   sync.Once
	hashes map[string]string // file name → short content hash
}

// New returns the embedded assets.
func New() *Assets { return &Assets{} }

func (a *Assets) load() {
	a.once.Do(func() {
		a.hashes = map[string]string{}
		entries, _ := fs.ReadDir(files, "files")
		for _, e := range entries {
			data, err := files.ReadFile("files/" + e.Name())
			if err != nil {
				continue
			}
			sum := sha256.Sum256(data)
			a.hashes[e.Name()] = hex.EncodeToString(sum[:6])
		}
	})
}

// URL returns the hashed URL of a file, such as "/static/3f2a…/app.css".
func (a *Assets) URL(name string) string {
	a.load()
	return "/static/" + a.hashes[name] + "/" + name
}

// ServeHTTP serves "/static/<hash>/<name>". A current hash is cached as immutable;
// an old one (a page from before an upgrade) gets the current file, briefly cached.
func (a *Assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.load()
	rest := strings.TrimPrefix(r.URL.Path, "/static/")
	hash, name, ok := strings.Cut(rest, "/")
	current, known := a.hashes[name]
	if !ok || !known || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	data, err := files.ReadFile("files/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if hash == current {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=300")
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("ETag", `"`+current+`"`)
	if etagMatches(r.Header.Get("If-None-Match"), `"`+current+`"`) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	w.Write(data)
}

// etagMatches reports whether an If-None-Match header names etag (or "*"),
// accepting lists and weak validators.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

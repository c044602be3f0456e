package static

import (
	"mime"
	"net/http"
	"path"
)

// ConnectScriptPath is where the connect popup script lives for the operator's
// own site: a stable, versioned URL (a new major version gets a new path), not a
// content hash the operator could not know.
const ConnectScriptPath = "/static/connect/v1.js"

// Stable serves one embedded file at a fixed URL, for pages outside grconnect that
// link to it. It may change within its version, so it is cached for an hour, not
// forever.
func (a *Assets) Stable(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.load()
		current, known := a.hashes[name]
		data, err := files.ReadFile("files/" + name)
		if !known || err != nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
		h.Set("X-Content-Type-Options", "nosniff")
		// Operators' pages on other origins load it as a script.
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		h.Set("ETag", `"`+current+`"`)
		if etagMatches(r.Header.Get("If-None-Match"), `"`+current+`"`) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(data)
	})
}

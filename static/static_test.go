package static_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/static"
)

const immutable = "public, max-age=31536000, immutable"

// diskFile returns the source of an embedded file and its expected short hash.
func diskFile(t *testing.T, name string) (data []byte, hash string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("files", name))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:6])
}

// serve sends one request straight to the handler, so the path reaches it uncleaned.
func serve(t *testing.T, a *static.Assets, method, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	return rec
}

var hashedURL = regexp.MustCompile(`^/static/[0-9a-f]{12}/app\.css$`)

func TestURLIsContentHashed(t *testing.T) {
	a := static.New()
	u := a.URL("app.css")
	if !hashedURL.MatchString(u) {
		t.Fatalf("URL(app.css) = %q, want /static/<12 hex>/app.css", u)
	}
	_, hash := diskFile(t, "app.css")
	if want := "/static/" + hash + "/app.css"; u != want {
		t.Errorf("URL(app.css) = %q, want %q (hash of the file's content)", u, want)
	}
	if a.URL("app.js") == a.URL("app.css") || strings.Split(a.URL("app.js"), "/")[2] == strings.Split(u, "/")[2] {
		t.Errorf("app.js and app.css share a hash: %q %q", a.URL("app.js"), u)
	}
}

func TestServeCurrentHash(t *testing.T) {
	a := static.New()
	tests := []struct {
		name  string
		types []string // acceptable media types
	}{
		{"app.css", []string{"text/css"}},
		{"app.js", []string{"text/javascript", "application/javascript"}},
		{"favicon.svg", []string{"image/svg+xml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, _ := diskFile(t, tt.name)
			rec := serve(t, a, http.MethodGet, a.URL(tt.name), nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s = %d", a.URL(tt.name), rec.Code)
			}
			if got := rec.Header().Get("Cache-Control"); got != immutable {
				t.Errorf("Cache-Control = %q, want %q", got, immutable)
			}
			ctype := rec.Header().Get("Content-Type")
			media, _, _ := strings.Cut(ctype, ";")
			ok := false
			for _, want := range tt.types {
				ok = ok || strings.TrimSpace(media) == want
			}
			if !ok {
				t.Errorf("Content-Type = %q, want one of %q", ctype, tt.types)
			}
			if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
			if rec.Body.String() != string(data) {
				t.Errorf("body is not the embedded %s", tt.name)
			}
		})
	}
}

func TestHeadHasNoBody(t *testing.T) {
	a := static.New()
	rec := serve(t, a, http.MethodHead, a.URL("app.css"), nil)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD = %d with %d body bytes, want 200 and none", rec.Code, rec.Body.Len())
	}
	if rec.Header().Get("Cache-Control") != immutable {
		t.Errorf("HEAD Cache-Control = %q", rec.Header().Get("Cache-Control"))
	}
}

func TestOldHashServesBriefly(t *testing.T) {
	a := static.New()
	data, hash := diskFile(t, "app.css")
	old := "000000000000"
	if old == hash {
		old = "111111111111"
	}
	rec := serve(t, a, http.MethodGet, "/static/"+old+"/app.css", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("old hash = %d, want 200", rec.Code)
	}
	cc := rec.Header().Get("Cache-Control")
	if cc == "" || strings.Contains(cc, "immutable") || strings.Contains(cc, "31536000") {
		t.Errorf("old hash Cache-Control = %q, want a short cache without immutable", cc)
	}
	if rec.Body.String() != string(data) {
		t.Error("old hash did not serve the current file")
	}
}

func TestNotFound(t *testing.T) {
	a := static.New()
	_, hash := diskFile(t, "app.css")
	for _, target := range []string{
		"/static/" + hash + "/missing.css",
		"/static/" + hash + "/static.go",
		"/static/x/../static.go",
		"/static/x/..%2fstatic.go",
		"/static/h/files/app.css",
		"/static/" + hash + "/files/app.css",
		"/static/" + hash + "/../files/app.css",
		"/static/" + hash + "/",
		"/static/" + hash,
		"/static/app.css",
		"/static/",
		"/static/h/.",
		"/static/h/..",
	} {
		t.Run(target, func(t *testing.T) {
			rec := serve(t, a, http.MethodGet, target, nil)
			if rec.Code != http.StatusNotFound {
				t.Errorf("GET %s = %d, want 404", target, rec.Code)
			}
			if strings.Contains(rec.Body.String(), "package static") {
				t.Error("served Go source")
			}
			if rec.Header().Get("Cache-Control") == immutable {
				t.Error("a 404 is cached as immutable")
			}
		})
	}
}

func TestETagRevalidation(t *testing.T) {
	a := static.New()
	first := serve(t, a, http.MethodGet, a.URL("app.js"), nil)
	etag := first.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	rec := serve(t, a, http.MethodGet, a.URL("app.js"), http.Header{"If-None-Match": {etag}})
	if rec.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match %s = %d, want 304", etag, rec.Code)
	}
	if rec.Body.Len() != 0 {
		t.Errorf("304 carries %d body bytes", rec.Body.Len())
	}
	if rec.Header().Get("ETag") != etag {
		t.Errorf("304 ETag = %q, want %q", rec.Header().Get("ETag"), etag)
	}

	// Lists, weak validators and * match too.
	for _, h := range []string{`"nope", ` + etag, "W/" + etag, "*"} {
		if rec := serve(t, a, http.MethodGet, a.URL("app.js"), http.Header{"If-None-Match": {h}}); rec.Code != http.StatusNotModified {
			t.Errorf("If-None-Match %s = %d, want 304", h, rec.Code)
		}
	}

	// A different file's ETag does not match.
	other := serve(t, a, http.MethodGet, a.URL("app.css"), nil).Header().Get("ETag")
	if other == etag {
		t.Fatalf("app.css and app.js share ETag %s", etag)
	}
	if rec := serve(t, a, http.MethodGet, a.URL("app.js"), http.Header{"If-None-Match": {other}}); rec.Code != http.StatusOK {
		t.Errorf("If-None-Match with another file's ETag = %d, want 200", rec.Code)
	}
}

// TestStableConnectScript: the connect popup's script is served at its versioned
// path for other origins' pages, cached briefly, revalidated by ETag.
func TestStableConnectScript(t *testing.T) {
	a := static.New()
	data, hash := diskFile(t, "connect.js")
	h := a.Stable("connect.js")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, static.ConnectScriptPath, nil))
	if rec.Code != http.StatusOK || rec.Body.String() != string(data) {
		t.Fatalf("GET = %d, %d bytes", rec.Code, rec.Body.Len())
	}
	hd := rec.Header()
	if !strings.HasPrefix(hd.Get("Content-Type"), "text/javascript") || hd.Get("Cache-Control") != "public, max-age=3600" ||
		hd.Get("Cross-Origin-Resource-Policy") != "cross-origin" || hd.Get("ETag") != `"`+hash+`"` {
		t.Fatalf("headers = %v", hd)
	}
	rec = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, static.ConnectScriptPath, nil)
	req.Header.Set("If-None-Match", `"`+hash+`"`)
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Fatalf("revalidation = %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	a.Stable("missing.js").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("missing file = %d", rec.Code)
	}
}

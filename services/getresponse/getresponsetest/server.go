package getresponsetest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
)

// Server is a Fake behind an httptest.Server.
type Server struct {
	*Fake
	srv *httptest.Server
}

// NewServer starts a Fake on a local httptest server. Close it when done.
func NewServer(opts Options) *Server {
	f := New(opts)
	return &Server{Fake: f, srv: httptest.NewServer(f)}
}

// URL returns the fake's base URL, including Options.Prefix.
func (s *Server) URL() string { return s.srv.URL + s.opts.Prefix }

// APIURL returns the API base, URL() + "/v3".
func (s *Server) APIURL() string { return s.URL() + "/v3" }

// TokenURL returns the token endpoint, APIURL() + "/token".
func (s *Server) TokenURL() string { return s.APIURL() + "/token" }

// AuthURL returns the authorize page, URL() + "/oauth2_authorize.html".
func (s *Server) AuthURL() string { return s.URL() + "/oauth2_authorize.html" }

// Client returns an *http.Client for the server (it does not follow
// redirects, so a test can read the consent redirect).
func (s *Server) Client() *http.Client {
	c := *s.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// Close releases hanging handlers, then shuts the server down.
func (s *Server) Close() {
	s.Fake.Close()
	s.srv.Close()
}

// AuthURLFor returns the consent page of a MAX domain: AuthURL() with
// ?domain=… (the fake serves every domain on one address).
func (s *Server) AuthURLFor(domain string) string {
	return s.AuthURL() + "?" + url.Values{"domain": {domain}}.Encode()
}

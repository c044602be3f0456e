package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/services"
)

// cleanInput refuses, with 400 and before any handler or query sees it, a request
// that carries a NUL byte or bytes that are not UTF-8 in its path, a query
// parameter, a header (Go's server already refuses NUL there), a form field or a
// JSON string: no text grconnect stores or looks up may hold them (PostgreSQL
// refuses both, which would be a 500 for a sign-in e-mail or an API key; SQLite
// would store them). The proxy's body is GetResponse's business and streams on.
func (s *Server) cleanInput(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		what, field := "", ""
		switch {
		case !cleanText(r.URL.Path):
			what, field = "The address", "path"
		case !cleanValues(r.URL.Query()):
			what, field = "A query parameter", "query"
		case !cleanHeaders(r.Header):
			what, field = "A header", "header"
		}
		if what == "" && c.Path() != proxyRoute && r.Body != nil && r.Body != http.NoBody {
			var err error
			if what, err = s.uncleanBody(c); err != nil {
				return err
			}
			field = "body"
		}
		if what == "" {
			return next(c)
		}
		msg := what + " holds a NUL byte or bytes that are not UTF-8."
		if strings.HasPrefix(r.URL.Path, "/api/") {
			return services.FieldErrors{field: msg} // the API's 400 invalid_input, naming the part
		}
		return echo.NewHTTPError(http.StatusBadRequest, msg)
	}
}

// uncleanBody names the part of a form or JSON body that is not clean text ("" when
// all is). A JSON body is read whole (the body limit applies) and put back.
func (s *Server) uncleanBody(c echo.Context) (string, error) {
	r := c.Request()
	mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	switch {
	case mt == echo.MIMEApplicationForm:
		// Read and put back, so a handler that wants the body itself (GetResponse's
		// callbacks at an events URL) still has it; FormValue parses it again.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return "", err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil && !cleanValues(form) {
			return "A form field", nil
		}
	case mt == echo.MIMEMultipartForm:
		form, err := c.FormParams()
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return "", err
			}
			return "", nil // the handler says what is wrong with it
		}
		if !cleanValues(form) {
			return "A form field", nil
		}
		if mf := r.MultipartForm; mf != nil && !cleanValues(mf.Value) {
			return "A form field", nil
		}
	case mt == echo.MIMEApplicationJSON || (mt == "" && strings.HasPrefix(r.URL.Path, "/api/")):
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return "", err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !cleanJSON(body) {
			return "A JSON value", nil
		}
	}
	return "", nil
}

// cleanText reports whether s is UTF-8 without a NUL byte.
func cleanText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

func cleanValues(vs map[string][]string) bool {
	for k, list := range vs {
		if !cleanText(k) {
			return false
		}
		for _, v := range list {
			if !cleanText(v) {
				return false
			}
		}
	}
	return true
}

// cleanHeaders checks every header but Cookie, whose values Go's cookie parser
// already limits to printable ASCII (a broken cookie is ignored, so a browser
// holding one is not locked out).
func cleanHeaders(h http.Header) bool {
	for k, list := range h {
		if k == "Cookie" {
			continue
		}
		for _, v := range list {
			if !cleanText(v) {
				return false
			}
		}
	}
	return true
}

// cleanJSON reports whether a JSON body is UTF-8 and none of its strings (keys or
// values) holds a NUL (written as \u0000). A body that is not JSON passes: the
// handler refuses it with its own words.
func cleanJSON(body []byte) bool {
	if !utf8.Valid(body) || bytes.IndexByte(body, 0) >= 0 {
		return false
	}
	if !bytes.Contains(body, []byte(`\u`)) {
		return true // no escape could hide a NUL
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return true // the end, or not JSON
		}
		if s, ok := tok.(string); ok && !cleanText(s) {
			return false
		}
	}
}

package handlers

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/grconnect/grconnect/services/tokens"
	"github.com/labstack/echo/v4"
)

// proxyRoute is the proxy's route pattern; its own body limit replaces the global one.
const proxyRoute = "/api/v1/connections/:id/proxy/*"

// proxyMethods are the methods the proxy forwards.
var proxyMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// tokenRefreshHeader tells the caller what the proxy did about an expired token.
const tokenRefreshHeader = "X-Grconnect-Token-Refresh"

// queuedHeader tells the caller how long, in milliseconds, the call waited in its
// GetResponse account's queue (on every answer, GetResponse's or grconnect's 429).
const queuedHeader = "X-Grconnect-Queued-Ms"

func (s *Server) apiProxy(c echo.Context) error {
	r := c.Request()
	// The path after /proxy, still percent-encoded, so that encoded tricks are seen.
	parts := strings.SplitN(r.URL.EscapedPath(), "/", 6) // "", api, v1, connections, id, proxy…
	if len(parts) < 6 || !strings.HasPrefix(parts[5], "proxy/") {
		return echo.ErrNotFound
	}
	if r.ContentLength > tokens.ProxyMaxBody {
		return &http.MaxBytesError{Limit: tokens.ProxyMaxBody}
	}
	body := http.MaxBytesReader(c.Response(), r.Body, tokens.ProxyMaxBody)
	res, err := s.proxy.Do(r.Context(), tokens.ProxyRequest{
		ConnectionID: c.Param("id"), Method: r.Method, Path: strings.TrimPrefix(parts[5], "proxy"), RawQuery: r.URL.RawQuery,
		Header: r.Header, Body: body, ContentLength: r.ContentLength, Actor: apiActor(c),
	})
	if err != nil {
		var limited *tokens.RateLimitedError
		if errors.As(err, &limited) {
			c.Response().Header().Set(queuedHeader, strconv.FormatInt(limited.Queued.Milliseconds(), 10))
		}
		return err
	}
	defer res.Body.Close()
	h := c.Response().Header()
	for k, v := range res.Header {
		h[k] = v
	}
	h.Set(queuedHeader, strconv.FormatInt(res.Queued.Milliseconds(), 10))
	switch {
	case res.Retried:
		h.Set(tokenRefreshHeader, "retried")
	case res.NotReplayed:
		h.Set(tokenRefreshHeader, "refreshed-not-retried")
	}
	c.Response().WriteHeader(res.StatusCode)
	if r.Method == http.MethodHead {
		return nil
	}
	// Streamed: a large answer never sits in memory.
	if _, err := io.Copy(c.Response(), res.Body); err != nil {
		// The status is sent; the caller sees a cut-off body. Usually it went away.
		s.log.Debug("proxy answer cut short", "connection", c.Param("id"), "error", err)
	}
	return nil
}

package handlers

import (
	"context"
	"net"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/tokens"
)

// RequestIDHeader carries a request's ID in the answer (and, from a trusted reverse
// proxy, in the request).
const RequestIDHeader = "X-Request-Id"

// ctxRequestID is the echo.Context key of the request's ID.
const ctxRequestID = "grconnect.request_id"

type requestIDKey struct{}

// requestID gives every request an ID: in the X-Request-Id answer header, the
// request's log line, the error page and the API's error body, so that a
// customer's screenshot leads to the log line. A trusted reverse proxy's
// X-Request-Id is kept (nginx's $request_id, say), so one ID follows the request
// through both logs; anyone else's is replaced. It also says who acts for the
// audit log: the client's address here, the operator or API key further on; and
// when the request arrived, so that refreshes asked for at once share one call.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		id := ""
		if incoming := r.Header.Get(RequestIDHeader); incoming != "" && validRequestID(incoming) && s.fromTrustedProxy(r.RemoteAddr) {
			id = incoming
		}
		if id == "" {
			id = models.RandomToken(10) // 16 characters: short enough to read out
		}
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		ctx = models.WithActor(ctx, models.Actor{IP: c.RealIP()})
		ctx = tokens.WithAskedAt(ctx, time.Now())
		c.SetRequest(r.WithContext(ctx))
		return next(c)
	}
}

// requestIDOf returns the request's ID ("" outside the middleware).
func requestIDOf(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// validRequestID accepts 8 to 128 letters, digits and . _ : -.
func validRequestID(s string) bool {
	if len(s) < 8 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == ':' || b == '-') {
			return false
		}
	}
	return true
}

// fromTrustedProxy reports whether the peer is one of GRCONNECT_TRUSTED_PROXIES.
func (s *Server) fromTrustedProxy(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	for _, n := range s.cfg.TrustedProxies {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// actAs records who acts in the request's context: an operator or an API key.
func actAs(c echo.Context, name string) {
	r := c.Request()
	c.SetRequest(r.WithContext(models.WithActor(r.Context(), models.Actor{Name: name, IP: c.RealIP()})))
}

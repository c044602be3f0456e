package handlers

import (
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"
)

// maxUntrustedPeers bounds the peers remembered as already logged.
const maxUntrustedPeers = 1024

// untrustedForwarders remembers the peers that sent X-Forwarded-For without being
// in GRCONNECT_TRUSTED_PROXIES, so each is logged once.
type untrustedForwarders struct {
	log  *slog.Logger
	mu   sync.Mutex
	seen map[string]bool
	full bool
}

// note logs, the first time, that peer sent X-Forwarded-For that is ignored.
func (u *untrustedForwarders) note(peer string) {
	u.mu.Lock()
	if u.seen[peer] || u.full {
		u.mu.Unlock()
		return
	}
	if len(u.seen) >= maxUntrustedPeers {
		u.full = true
		u.mu.Unlock()
		u.log.Warn("X-Forwarded-For ignored from many untrusted peers; no more of them are logged", "peers", maxUntrustedPeers)
		return
	}
	u.seen[peer] = true
	u.mu.Unlock()
	u.log.Warn("X-Forwarded-For ignored: the peer is not in GRCONNECT_TRUSTED_PROXIES. If it is your reverse proxy, add it there; "+
		"until then every client behind it has the proxy's address (sign-in throttling then counts them all as one)", "peer", peer)
}

// ipExtractor picks a request's client address: the peer's, unless the peer is
// one of the trusted reverse proxies, whose X-Forwarded-For is then read from the
// right, skipping trusted hops. Echo's own defaults (trust every private and
// loopback peer) are turned off: only the configured proxies are believed. A peer
// not trusted that sends X-Forwarded-For is logged once.
func (s *Server) ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	extract := echo.ExtractIPDirect()
	if len(trusted) > 0 {
		opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, n := range trusted {
			opts = append(opts, echo.TrustIPRange(n))
		}
		extract = echo.ExtractIPFromXFFHeader(opts...)
	}
	return func(r *http.Request) string {
		if r.Header.Get(echo.HeaderXForwardedFor) != "" && !s.fromTrustedProxy(r.RemoteAddr) {
			peer, _, err := net.SplitHostPort(r.RemoteAddr)
			if err != nil {
				peer = r.RemoteAddr
			}
			s.untrusted.note(peer)
		}
		return extract(r)
	}
}

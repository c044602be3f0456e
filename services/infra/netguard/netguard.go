// Package netguard is the one guard of grconnect's outgoing calls (GetResponse's
// token endpoint, API and proxy, webhooks, alert e-mail): loopback, private,
// link-local, unique-local, IPv4-mapped, NAT64 and 6to4 forms of them, and cloud
// metadata names and addresses are refused when the connection is dialled, after
// name resolution, so a name that resolves (or rebinds) to such an address is
// refused too. Two things let private addresses through: the hosts of the URLs
// named in the server's own settings (an operator who points grconnect at a test
// server on their network says so there), and the allow setting each guard names.
// Link-local and metadata addresses are refused always.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Class is what an outgoing call may reach at an address or host.
type Class int

// The classes of address.
const (
	Public    Class = iota
	Private         // loopback, private, unique-local, shared (CGNAT): only when allowed
	Forbidden       // link-local, cloud metadata, unspecified, multicast, reserved: never
)

var (
	// privateRanges are not routed on the public internet, or lead into someone's own
	// network: carrier-grade NAT (RFC 6598), benchmarking (RFC 2544), the IETF
	// protocol assignments, documentation and tunnelling ranges.
	privateRanges = []netip.Prefix{
		netip.MustParsePrefix("100.64.0.0/10"),
		netip.MustParsePrefix("198.18.0.0/15"),
		netip.MustParsePrefix("192.0.0.0/24"),
		netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
		netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64 (RFC 8215)
		netip.MustParsePrefix("2001:db8::/32"),   // documentation
		netip.MustParsePrefix("100::/64"),        // discard-only
		netip.MustParsePrefix("2001::/32"),       // Teredo: the IPv4 inside is obfuscated
		netip.MustParsePrefix("2001:10::/28"),    // ORCHID
		netip.MustParsePrefix("2001:20::/28"),    // ORCHIDv2
		netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
		netip.MustParsePrefix("192.0.2.0/24"),    // documentation
		netip.MustParsePrefix("198.51.100.0/24"), // documentation
		netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	}
	reservedV4 = netip.MustParsePrefix("240.0.0.0/4")
	thisNet    = netip.MustParsePrefix("0.0.0.0/8")
	// nat64 and sixToFour embed an IPv4 address in IPv6; the embedded one decides.
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
	// ipv4Compatible is the deprecated ::a.b.c.d form.
	ipv4Compatible = netip.MustParsePrefix("::/96")
)

// metadataAddrs are cloud instance-metadata addresses outside the link-local ranges.
var metadataAddrs = map[netip.Addr]bool{
	netip.MustParseAddr("fd00:ec2::254"):   true, // AWS (IPv6)
	netip.MustParseAddr("100.100.100.200"): true, // Alibaba Cloud
	netip.MustParseAddr("192.0.0.192"):     true, // Oracle Cloud
}

// metadataHosts are names of cloud metadata services, refused whatever they resolve to.
var metadataHosts = map[string]bool{
	"metadata": true, "metadata.google.internal": true, "metadata.goog": true, "instance-data": true,
	"instance-data.ec2.internal": true, "metadata.azure.internal": true, "metadata.tencentyun.com": true,
	"metadata.platformequinix.com": true, "metadata.packet.net": true,
}

// ClassifyAddr says whether an outgoing call may reach a.
func ClassifyAddr(a netip.Addr) Class {
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		case sixToFour.Contains(a):
			a = netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		case ipv4Compatible.Contains(a) && !a.IsUnspecified() && !a.IsLoopback():
			a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		}
	}
	if metadataAddrs[a] {
		return Forbidden
	}
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast(), a.IsMulticast(),
		a.Is4() && (thisNet.Contains(a) || reservedV4.Contains(a)):
		return Forbidden
	case a.IsLoopback(), a.IsPrivate():
		return Private
	}
	for _, p := range privateRanges {
		if p.Contains(a) {
			return Private
		}
	}
	return Public
}

// ClassifyHost says what a URL's host names, as far as can be told without a
// lookup: an address literal, a loopback name, a metadata name, or (public)
// anything else, which the dial-time guard checks again once resolved.
func ClassifyHost(host string) Class {
	h := normalHost(host)
	if a, err := netip.ParseAddr(h); err == nil {
		return ClassifyAddr(a)
	}
	switch {
	case metadataHosts[h]:
		return Forbidden
	case h == "localhost" || strings.HasSuffix(h, ".localhost"):
		return Private
	}
	return Public
}

// normalHost lowercases a host and drops IPv6 brackets, a zone and a trailing dot.
func normalHost(host string) string {
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if i := strings.IndexByte(h, '%'); i >= 0 && strings.Contains(h, ":") {
		h = h[:i]
	}
	return h
}

// HostOf returns the host of an absolute URL ("" when it has none).
func HostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return normalHost(u.Hostname())
}

// Guard decides which addresses outgoing calls may reach, and dials through that
// decision. It is safe for concurrent use.
type Guard struct {
	setting      string
	allowPrivate func() bool
	hosts        map[string]bool
}

// New returns a guard. setting names the setting that lets private addresses
// through (for its refusals), allowPrivate reports whether it is on (nil: never),
// and hosts are the hosts of the URLs named in the server's own settings, which may
// be private (but never link-local or metadata).
func New(setting string, allowPrivate func() bool, hosts ...string) *Guard {
	g := &Guard{setting: setting, allowPrivate: allowPrivate, hosts: map[string]bool{}}
	for _, h := range hosts {
		if h = normalHost(h); h != "" {
			g.hosts[h] = true
		}
	}
	return g
}

// Allows reports whether private addresses are allowed for host: it is one of
// the configured hosts, or the allow setting is on.
func (g *Guard) allows(host string) bool {
	return g.hosts[normalHost(host)] || (g.allowPrivate != nil && g.allowPrivate())
}

// CheckURL says whether a URL may be saved as one grconnect calls: nil, or a
// *BlockedError naming the problem. Only what can be told without a lookup is
// checked here (an address literal, a loopback or metadata name); names are
// checked again when a call dials them.
func (g *Guard) CheckURL(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	return g.CheckHost(u.Hostname())
}

// CheckHost is CheckURL for a bare host.
func (g *Guard) CheckHost(host string) error {
	h := normalHost(host)
	switch ClassifyHost(h) {
	case Forbidden:
		return &BlockedError{Host: h, Setting: g.setting}
	case Private:
		if !g.allows(h) {
			return &BlockedError{Host: h, Private: true, Setting: g.setting}
		}
	}
	return nil
}

// DialContext connects like net.Dialer's, refusing a metadata name before any
// lookup and every forbidden (or, unless allowed, private) address once resolved.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	if metadataHosts[normalHost(host)] {
		return nil, &BlockedError{Host: normalHost(host), Setting: g.setting}
	}
	allowed := g.allows(host)
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second,
		Control: func(_, resolved string, _ syscall.RawConn) error {
			ip, _, err := net.SplitHostPort(resolved)
			if err != nil {
				return err
			}
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return fmt.Errorf("refused to connect to %q: not an address", ip)
			}
			switch ClassifyAddr(a) {
			case Forbidden:
				return &BlockedError{Host: normalHost(host), Addr: a, Setting: g.setting}
			case Private:
				if !allowed {
					return &BlockedError{Host: normalHost(host), Addr: a, Private: true, Setting: g.setting}
				}
			}
			return nil
		}}
	return d.DialContext(ctx, network, address)
}

// Transport returns an HTTP transport that dials through the guard and uses no
// proxy from the environment (the guard would check the proxy's address, not the
// one the call goes to).
func (g *Guard) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = g.DialContext
	return t
}

// Client returns an HTTP client on Transport that never follows a redirect.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: g.Transport(), Timeout: timeout, CheckRedirect: NoRedirects}
}

// NoRedirects makes a client return a redirect as the answer instead of following
// it: a Location must never receive a request's credentials or body.
func NoRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// BlockedError is the guard's refusal of a host or address.
type BlockedError struct {
	Host string     // the host of the URL
	Addr netip.Addr // the resolved address, when the refusal came at dial time
	// Private says the address is loopback or private (allowed by Setting);
	// otherwise it is link-local, metadata or not unicast, and never allowed.
	Private bool
	Setting string
}

// Error names the host and address: for the log.
func (e *BlockedError) Error() string {
	what := e.Host
	if e.Addr.IsValid() && e.Addr.String() != e.Host {
		what = fmt.Sprintf("%s (%s)", e.Host, e.Addr)
	}
	return "refused to connect to " + what + ": " + e.Public()
}

// Public says why without naming a host, address or port: for answers to callers.
func (e *BlockedError) Public() string {
	if e.Private {
		msg := "a loopback or private-network address"
		if e.Setting != "" {
			msg += " (set " + e.Setting + " to allow it)"
		}
		return msg
	}
	return "a link-local, cloud metadata or non-unicast address, which grconnect never calls"
}

// Blocked returns the guard's refusal inside err, if that is what failed.
func Blocked(err error) (*BlockedError, bool) {
	var b *BlockedError
	ok := errors.As(err, &b)
	return b, ok
}

package services

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// addrClass is what an outgoing call may reach at an address.
type addrClass int

const (
	addrPublic    addrClass = iota
	addrPrivate             // loopback and private networks: only with GRCONNECT_WEBHOOK_ALLOW_PRIVATE
	addrForbidden           // link-local (cloud metadata), unspecified, multicast: never
)

// sharedAddressSpace is carrier-grade NAT (RFC 6598): private in practice.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// metadataAddrs are cloud instance-metadata addresses outside the link-local ranges.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),   // AWS (IPv6)
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
}

// nat64 embeds IPv4 addresses in IPv6 (RFC 6052); the embedded one decides.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// classifyAddr says whether an outgoing call may reach a.
func classifyAddr(a netip.Addr) addrClass {
	a = a.Unmap()
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	for _, m := range metadataAddrs {
		if a == m {
			return addrForbidden
		}
	}
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast(), a.IsMulticast(),
		a.Is4() && (a.As4()[0] == 0 || a == netip.AddrFrom4([4]byte{255, 255, 255, 255})):
		return addrForbidden
	case a.IsLoopback(), a.IsPrivate(), sharedAddressSpace.Contains(a):
		return addrPrivate
	}
	return addrPublic
}

// metadataHosts are names of cloud metadata services, refused whatever they resolve to.
var metadataHosts = map[string]bool{
	"metadata": true, "metadata.google.internal": true, "metadata.goog": true, "instance-data": true,
	"instance-data.ec2.internal": true, "metadata.azure.internal": true, "metadata.tencentyun.com": true,
}

// classifyHost says what a URL's host names, as far as can be told without a
// lookup: an address literal, a loopback name, a metadata name or (public) anything
// else, which the dial-time guard checks again once resolved.
func classifyHost(host string) addrClass {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return classifyAddr(a)
	}
	switch {
	case metadataHosts[h]:
		return addrForbidden
	case h == "localhost" || strings.HasSuffix(h, ".localhost"):
		return addrPrivate
	}
	return addrPublic
}

// errBlockedAddress is why the dial-time guard refused a connection.
type errBlockedAddress struct {
	addr    netip.Addr
	private bool
}

func (e *errBlockedAddress) Error() string {
	if e.private {
		return fmt.Sprintf("refused to connect to %s: a loopback or private address (set GRCONNECT_WEBHOOK_ALLOW_PRIVATE to allow it)", e.addr)
	}
	return fmt.Sprintf("refused to connect to %s: a link-local, metadata or non-unicast address", e.addr)
}

// guardedDialer returns a dialer whose Control refuses forbidden addresses, and
// private ones unless allowPrivate reports true, after name resolution: a public
// name that resolves to 169.254.169.254 (or rebinds to it later) is still refused.
func guardedDialer(allowPrivate func() bool) *net.Dialer {
	return &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			a, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("refused to connect to %q: not an address", host)
			}
			switch classifyAddr(a) {
			case addrForbidden:
				return &errBlockedAddress{addr: a}
			case addrPrivate:
				if !allowPrivate() {
					return &errBlockedAddress{addr: a, private: true}
				}
			}
			return nil
		},
	}
}

// noRedirects makes a client return a redirect as the response instead of following
// it: a Location must never receive a request's credentials or body.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// guardedClient is an HTTP client for calls to operator-supplied URLs: no proxy
// from the environment (the guard would check the proxy's address), the dial-time
// address guard, no redirects.
func guardedClient(timeout time.Duration, allowPrivate func() bool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = guardedDialer(allowPrivate).DialContext
	return &http.Client{Transport: t, Timeout: timeout, CheckRedirect: noRedirects}
}

// blockedReason returns the guard's refusal inside err, if that is what failed.
func blockedReason(err error) (string, bool) {
	var b *errBlockedAddress
	if errors.As(err, &b) {
		return b.Error(), true
	}
	return "", false
}

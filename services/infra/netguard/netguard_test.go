package netguard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/grconnect/grconnect/services/infra/netguard"
)

func TestClassifyAddr(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		addr string
		want netguard.Class
	}{
		{"93.184.215.14", netguard.Public},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", netguard.Public},
		{"127.0.0.1", netguard.Private},
		{"127.0.0.9", netguard.Private},
		{"::1", netguard.Private},
		{"10.1.2.3", netguard.Private},
		{"172.16.0.1", netguard.Private},
		{"192.168.1.10", netguard.Private},
		{"100.64.0.1", netguard.Private},       // carrier-grade NAT
		{"fd00::1", netguard.Private},          // unique-local
		{"fec0::1", netguard.Private},          // site-local
		{"::ffff:127.0.0.1", netguard.Private}, // IPv4-mapped loopback
		{"::ffff:10.0.0.1", netguard.Private},
		{"64:ff9b::7f00:1", netguard.Private}, // NAT64 of 127.0.0.1
		{"64:ff9b::a00:1", netguard.Private},  // NAT64 of 10.0.0.1
		{"64:ff9b:1::1", netguard.Private},    // local-use NAT64
		{"2002:7f00:1::1", netguard.Private},  // 6to4 of 127.0.0.1
		{"::7f00:1", netguard.Private},        // IPv4-compatible 127.0.0.1
		{"169.254.169.254", netguard.Forbidden},
		{"169.254.170.2", netguard.Forbidden}, // ECS task metadata
		{"::ffff:169.254.169.254", netguard.Forbidden},
		{"64:ff9b::a9fe:a9fe", netguard.Forbidden}, // NAT64 of 169.254.169.254
		{"2002:a9fe:a9fe::1", netguard.Forbidden},  // 6to4 of 169.254.169.254
		{"fd00:ec2::254", netguard.Forbidden},      // AWS metadata over IPv6
		{"100.100.100.200", netguard.Forbidden},    // Alibaba metadata
		{"192.0.0.192", netguard.Forbidden},        // Oracle metadata
		{"fe80::1", netguard.Forbidden},
		{"0.0.0.0", netguard.Forbidden},
		{"0.1.2.3", netguard.Forbidden},
		{"::", netguard.Forbidden},
		{"224.0.0.1", netguard.Forbidden},
		{"ff02::1", netguard.Forbidden},
		{"255.255.255.255", netguard.Forbidden},
		{"240.0.0.1", netguard.Forbidden},
	} {
		if got := netguard.ClassifyAddr(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("%s: class %d, want %d", tt.addr, got, tt.want)
		}
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	allowPrivate := false
	g := netguard.New("GRCONNECT_GETRESPONSE_ALLOW_PRIVATE", func() bool { return allowPrivate }, "gr.internal.example", "127.0.0.1")
	always := []string{"http://169.254.169.254/latest", "http://[fd00:ec2::254]/v3", "http://metadata.google.internal/v3",
		"http://METADATA.GOOGLE.INTERNAL./v3", "http://[::ffff:a9fe:a9fe]/v3", "http://0.0.0.0:8080/v3"}
	private := []string{"http://127.0.0.9:20099/v3", "http://10.0.0.5/v3", "http://localhost:9/v3", "http://[::1]/v3", "http://[fd12::1]/v3",
		"http://[::ffff:127.0.0.2]/v3", "http://api.localhost/v3"}
	allowed := []string{"https://api.getresponse.com/v3", "http://127.0.0.1:4000/v3", "https://gr.internal.example/v3", "https://GR.internal.example./v3"}
	for _, u := range append(always, private...) {
		err := g.CheckURL(u)
		b, ok := netguard.Blocked(err)
		if !ok {
			t.Errorf("%s: %v, want a refusal", u, err)
			continue
		}
		if strings.Contains(b.Public(), b.Host) || (b.Private && !strings.Contains(b.Public(), "GRCONNECT_GETRESPONSE_ALLOW_PRIVATE")) {
			t.Errorf("%s: public reason %q", u, b.Public())
		}
	}
	for _, u := range allowed {
		if err := g.CheckURL(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	allowPrivate = true
	for _, u := range private {
		if err := g.CheckURL(u); err != nil {
			t.Errorf("with private addresses allowed, %s refused: %v", u, err)
		}
	}
	for _, u := range always {
		if err := g.CheckURL(u); err == nil {
			t.Errorf("with private addresses allowed, %s accepted", u)
		}
	}
}

// TestDialTimeGuard: what the URL check cannot see — a name resolving to loopback —
// is refused when the connection is dialled; a configured host passes; a metadata
// name is refused before any lookup.
func TestDialTimeGuard(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	strict := netguard.New("X_ALLOW", nil).Client(0)
	for _, u := range []string{srv.URL, "http://localhost:" + port + "/", "http://[::ffff:127.0.0.1]:" + port + "/"} {
		_, err := strict.Get(u)
		b, ok := netguard.Blocked(err)
		if !ok || !b.Private || !b.Addr.IsValid() {
			t.Errorf("%s: %v, want a dial-time refusal", u, err)
		}
	}
	if _, err := strict.Get("http://metadata.google.internal/computeMetadata/v1"); err == nil {
		t.Error("a metadata name was dialled")
	} else if b, ok := netguard.Blocked(err); !ok || b.Private {
		t.Errorf("metadata name: %v", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the server", hits.Load())
	}

	// The host of a configured URL may be private: the tests' fakes, an operator's
	// own test server.
	configured := netguard.New("X_ALLOW", nil, "127.0.0.1").Client(0)
	res, err := configured.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	// …but only that host: localhost is another name.
	if _, err := configured.Get("http://localhost:" + port + "/"); err == nil {
		t.Error("localhost passed as if it were the configured 127.0.0.1")
	}
	allowAll := netguard.New("X_ALLOW", func() bool { return true })
	conn, err := allowAll.DialContext(context.Background(), "tcp", "localhost:"+port)
	if err != nil {
		t.Fatalf("with the allow setting on: %v", err)
	}
	conn.Close()
	if hits.Load() != 1 {
		t.Fatalf("%d requests reached the server, want 1", hits.Load())
	}
}

// TestClientFollowsNoRedirect: a 307 comes back as the answer.
func TestClientFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	var trapped atomic.Int64
	trap := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { trapped.Add(1) }))
	defer trap.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, trap.URL, http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	res, err := netguard.New("", func() bool { return true }).Client(0).Get(redirector.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect || trapped.Load() != 0 {
		t.Fatalf("status %d, trap hit %d times", res.StatusCode, trapped.Load())
	}
}

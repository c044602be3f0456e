package mailer_test

import (
	"context"
	"crypto/tls"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/services/infra/mailer"
	"github.com/grconnect/grconnect/services/infra/mailer/mailertest"
	"github.com/grconnect/grconnect/services/infra/netguard"
)

func TestSendOverPlainSMTPWithAuth(t *testing.T) {
	srv := mailertest.NewServer()
	defer srv.Close()
	m := mailer.New(srv.URL("alerts", "s3cret-pass"))
	err := m.Send(context.Background(), mailer.Message{From: "grconnect@example.com", To: []string{"ann@example.com", "bob@example.com"},
		Subject: "grconnect: 1 app needs attention", Body: "line one\n.a line starting with a dot\nlast"})
	if err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()
	if len(got) != 1 {
		t.Fatalf("%d messages received", len(got))
	}
	g := got[0]
	if g.From != "grconnect@example.com" || strings.Join(g.To, ",") != "ann@example.com,bob@example.com" || g.User != "alerts" || g.Password != "s3cret-pass" {
		t.Fatalf("envelope = %+v", g)
	}
	for _, want := range []string{"Subject: grconnect: 1 app needs attention\r\n", "To: ann@example.com, bob@example.com\r\n",
		"Auto-Submitted: auto-generated\r\n", "\r\n\r\nline one\r\n.a line starting with a dot\r\nlast\r\n"} {
		if !strings.Contains(g.Data, want) {
			t.Errorf("message lacks %q:\n%s", want, g.Data)
		}
	}
}

func TestSendOverImplicitTLS(t *testing.T) {
	srv := mailertest.NewTLSServer()
	defer srv.Close()
	m := mailer.New(srv.URL("", ""))
	// Without trusting the server's certificate the delivery is refused…
	if err := m.Send(context.Background(), mailer.Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: "x", Body: "y"}); err == nil {
		t.Fatal("an untrusted certificate was accepted")
	}
	// …and with it, it goes through.
	m.TLSConfig = &tls.Config{RootCAs: srv.RootCAs}
	if err := m.Send(context.Background(), mailer.Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: "x", Body: "y"}); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages", n)
	}
}

func TestSendErrorHidesThePassword(t *testing.T) {
	srv := mailertest.NewServer()
	srv.Close() // nobody listens any more
	err := mailer.New(srv.URL("alerts", "s3cret-pass")).Send(context.Background(), mailer.Message{From: "a@example.com", To: []string{"b@example.com"}})
	if err == nil || strings.Contains(err.Error(), "s3cret-pass") {
		t.Fatalf("error = %v", err)
	}
}

// TestSendRefusesMetadataAddresses: the SMTP server is the operator's own setting,
// so a private one is fine (the tests' server is on loopback), but a link-local or
// cloud metadata address is never dialled, whether written as an address or a name.
func TestSendRefusesMetadataAddresses(t *testing.T) {
	for _, raw := range []string{"smtp://169.254.169.254:25", "smtp://[fd00:ec2::254]:25", "smtps://metadata.google.internal:465", "smtp://[::ffff:169.254.169.254]:25"} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		m := mailer.New(u)
		m.Timeout = 2 * time.Second
		err = m.Send(context.Background(), mailer.Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: "x", Body: "y"})
		if _, ok := netguard.Blocked(err); !ok {
			t.Errorf("%s: %v, want the guard's refusal", raw, err)
		}
	}
}

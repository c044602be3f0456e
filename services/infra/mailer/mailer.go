// Package mailer sends e-mail through an SMTP server given as a URL:
// smtp://user:pass@host:587 (STARTTLS when the server offers it; credentials are
// sent only over TLS or to a server on this machine) or smtps://user:pass@host:465
// (implicit TLS).
package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"time"

	"github.com/grconnect/grconnect/services/infra/netguard"
)

// Message is one plain-text e-mail.
type Message struct {
	From    string
	To      []string
	Subject string
	Body    string
}

// SMTP sends messages through one server.
type SMTP struct {
	server *url.URL
	// Timeout bounds one delivery; 0 means 30 s.
	Timeout time.Duration
	// TLSConfig, when set, replaces the default TLS settings (tests trust their own CA).
	TLSConfig *tls.Config
}

// New returns a sender for the server at u (smtp:// or smtps://).
func New(u *url.URL) *SMTP { return &SMTP{server: u} }

// Send delivers m. Its errors never contain the server's password.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host := s.server.Hostname()
	port := s.server.Port()
	if port == "" {
		port = map[string]string{"smtp": "587", "smtps": "465"}[s.server.Scheme]
	}
	tlsConfig := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if s.TLSConfig != nil {
		tlsConfig = s.TLSConfig.Clone()
		tlsConfig.ServerName = host
	}
	// The server is the operator's own setting, so it may be on a private network;
	// link-local and cloud metadata addresses are refused all the same.
	guard := netguard.New("", nil, host)
	conn, err := guard.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return fmt.Errorf("mailer: connect to %s: %w", host, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	if s.server.Scheme == "smtps" {
		conn = tls.Client(conn, tlsConfig)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("mailer: %s: %w", host, err)
	}
	defer c.Close()
	if s.server.Scheme == "smtp" {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConfig); err != nil {
				return fmt.Errorf("mailer: STARTTLS with %s: %w", host, err)
			}
		}
	}
	if user := s.server.User; user != nil {
		pass, _ := user.Password()
		// PlainAuth refuses to send the password in the clear to anything but localhost.
		if err := c.Auth(smtp.PlainAuth("", user.Username(), pass, host)); err != nil {
			return fmt.Errorf("mailer: sign in to %s: %s", host, redact(err.Error(), pass))
		}
	}
	if err := c.Mail(m.From); err != nil {
		return fmt.Errorf("mailer: MAIL FROM: %w", err)
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("mailer: RCPT TO: %w", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mailer: DATA: %w", err)
	}
	if _, err := w.Write(compose(m, time.Now())); err != nil {
		return fmt.Errorf("mailer: write the message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mailer: the server refused the message: %w", err)
	}
	return c.Quit()
}

// compose renders m as an RFC 5322 message with CRLF line endings.
func compose(m Message, now time.Time) []byte {
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", m.From)
	header("To", strings.Join(m.To, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", oneLine(m.Subject)))
	header("Date", now.UTC().Format(time.RFC1123Z))
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "8bit")
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	// net/smtp's data writer does the dot-stuffing.
	for _, line := range strings.Split(strings.ReplaceAll(m.Body, "\r\n", "\n"), "\n") {
		b.WriteString(line + "\r\n")
	}
	return b.Bytes()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func redact(msg, secret string) string {
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "xxxxx")
}

// Package mailertest is a small SMTP server for tests: it speaks enough of SMTP
// (EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT, and implicit TLS) to receive what a
// real client sends, and records each message. Domain code never imports it.
package mailertest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Message is one received message.
type Message struct {
	From string
	To   []string
	// Data is the message as sent (headers and body, CRLF line endings, dot-stuffing undone).
	Data string
	// User and Password are what AUTH PLAIN presented ("" without AUTH).
	User, Password string
}

// Server is a running SMTP server on a loopback port.
type Server struct {
	ln  net.Listener
	tls bool
	// RootCAs trusts the server's certificate (implicit-TLS servers).
	RootCAs *x509.CertPool

	mu       sync.Mutex
	messages []Message
	wg       sync.WaitGroup
}

// NewServer starts a plain SMTP server (clients may authenticate with PLAIN, which
// Go's client allows to a loopback server).
func NewServer() *Server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("mailertest: " + err.Error())
	}
	s := &Server{ln: ln}
	go s.serve()
	return s
}

// NewTLSServer starts an implicit-TLS (smtps) server with a fresh self-signed
// certificate for 127.0.0.1; RootCAs trusts it.
func NewTLSServer() *Server {
	cert, pool := selfSigned()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		panic("mailertest: " + err.Error())
	}
	s := &Server{ln: ln, tls: true, RootCAs: pool}
	go s.serve()
	return s
}

// URL returns the server's address as GRCONNECT_SMTP_URL takes it, with user and
// password ("" for none).
func (s *Server) URL(user, password string) *url.URL {
	u := &url.URL{Scheme: "smtp", Host: s.ln.Addr().String()}
	if s.tls {
		u.Scheme = "smtps"
	}
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u
}

// Messages returns the messages received so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Close stops the server.
func (s *Server) Close() {
	s.ln.Close()
	s.wg.Wait()
}

func (s *Server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			s.session(c)
		}()
	}
}

func (s *Server) session(c net.Conn) {
	r := bufio.NewReader(c)
	say := func(line string) { c.Write([]byte(line + "\r\n")) }
	say("220 mailertest ESMTP")
	var m Message
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO", "HELO":
			say("250-mailertest")
			say("250 AUTH PLAIN")
		case "AUTH":
			parts := strings.Fields(line)
			if len(parts) != 3 || strings.ToUpper(parts[1]) != "PLAIN" {
				say("504 only AUTH PLAIN with an initial response")
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(parts[2])
			fields := strings.Split(string(raw), "\x00")
			if err != nil || len(fields) != 3 {
				say("501 bad AUTH PLAIN")
				continue
			}
			m.User, m.Password = fields[1], fields[2]
			say("235 authenticated")
		case "MAIL":
			m.From = addr(line)
			say("250 ok")
		case "RCPT":
			m.To = append(m.To, addr(line))
			say("250 ok")
		case "DATA":
			say("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			m.Data = b.String()
			s.mu.Lock()
			s.messages = append(s.messages, m)
			s.mu.Unlock()
			m = Message{User: m.User, Password: m.Password}
			say("250 queued")
		case "RSET", "NOOP":
			say("250 ok")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("502 not implemented")
		}
	}
}

// addr takes the address out of "MAIL FROM:<a@b>".
func addr(line string) string {
	if i, j := strings.Index(line, "<"), strings.Index(line, ">"); i >= 0 && j > i {
		return line[i+1 : j]
	}
	return ""
}

func selfSigned() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("mailertest: " + err.Error())
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mailertest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic("mailertest: " + err.Error())
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

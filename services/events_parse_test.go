package services

import (
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestParseInboundReadsWhatGetResponseSends: webhooks as JSON (type from the body
// or X-Webhook-Type, the account from account.accountId, X-Webhook-ID kept),
// callbacks as query parameters or a form body (the action as the type,
// ACCOUNT_ID as the account, one content hash whatever the parameters' order),
// and anything else refused.
func TestParseInboundReadsWhatGetResponseSends(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                            string
		in                              InboundRequest
		source, typ, account, webhookID string
		bad                             bool
	}{
		{name: "webhook", in: InboundRequest{ContentType: "application/json", WebhookID: "w1", WebhookType: "ignored",
			Body: []byte(`{"type":"contact_opened_message","account":{"accountId":"VfEy1"}}`)},
			source: "webhook", typ: "contact_opened_message", account: "VfEy1", webhookID: "w1"},
		{name: "webhook typed by header, numeric account", in: InboundRequest{ContentType: "application/json; charset=utf-8", WebhookType: "contact_subscribed",
			Body: []byte(`{"account":{"accountId":12345}}`)}, source: "webhook", typ: "contact_subscribed", account: "12345"},
		{name: "webhook without content type", in: InboundRequest{Body: []byte(` {"type":"contact_removed_link"}`)}, source: "webhook", typ: "contact_removed_link"},
		{name: "callback in the query", in: InboundRequest{Method: "GET", Query: url.Values{"action": {"open"}, "ACCOUNT_ID": {"A1"}, "CONTACT_ID": {"C1"}}},
			source: "callback", typ: "open", account: "A1"},
		{name: "callback as a form", in: InboundRequest{ContentType: "application/x-www-form-urlencoded", Body: []byte("action=subscribe&account_id=A2")},
			source: "callback", typ: "subscribe", account: "A2"},
		{name: "a very long X-Webhook-ID is hashed", in: InboundRequest{ContentType: "application/json", WebhookID: strings.Repeat("x", 500), Body: []byte(`{"type":"t"}`)},
			source: "webhook", typ: "t", webhookID: "sha256:"},
		{name: "broken JSON", in: InboundRequest{ContentType: "application/json", Body: []byte(`{"type":`)}, bad: true},
		{name: "JSON that is no object", in: InboundRequest{ContentType: "application/json", Body: []byte(`[1,2]`)}, bad: true},
		{name: "text", in: InboundRequest{ContentType: "text/plain", Body: []byte("hello")}, bad: true},
		{name: "nothing", in: InboundRequest{Method: "GET"}, bad: true},
		{name: "form without action", in: InboundRequest{ContentType: "application/x-www-form-urlencoded", Body: []byte("CONTACT_ID=1")}, bad: true},
	}
	for _, c := range cases {
		p, err := parseInbound(c.in)
		var bad *BadEventError
		if c.bad {
			if !errors.As(err, &bad) {
				t.Errorf("%s: %v, want a BadEventError", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if p.source != c.source || p.typ != c.typ || p.accountID != c.account || !strings.HasPrefix(p.webhookID, c.webhookID) ||
			(c.webhookID == "" && p.webhookID != "") || len(p.contentHash) != 64 || p.payload == "" {
			t.Errorf("%s: %+v", c.name, p)
		}
	}
	a, _ := parseInbound(InboundRequest{Query: url.Values{"action": {"open"}, "B": {"2"}, "A": {"1"}}})
	b, _ := parseInbound(InboundRequest{ContentType: "application/x-www-form-urlencoded", Body: []byte("A=1&action=open&B=2")})
	if a.contentHash != b.contentHash || a.payload != `{"A":"1","B":"2","action":"open"}` {
		t.Fatalf("one callback, two hashes: %s %s", a.payload, b.payload)
	}
}

// TestEventLimiterHoldsUnderParallelCalls: of many calls at one instant, exactly
// the burst is allowed; time refills it at the rate; connections are apart.
func TestEventLimiterHoldsUnderParallelCalls(t *testing.T) {
	t.Parallel()
	l := newEventLimiter(10, 50)
	now := time.Now()
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if ok, _ := l.allow("con_a", now); ok {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != 50 {
		t.Fatalf("%d allowed at once, want the burst of 50", allowed)
	}
	if ok, wait := l.allow("con_a", now); ok || wait < time.Second {
		t.Fatalf("over the limit: %v, wait %v", ok, wait)
	}
	if ok, _ := l.allow("con_b", now); !ok {
		t.Fatal("another connection was limited")
	}
	n := 0
	for {
		if ok, _ := l.allow("con_a", now.Add(time.Second)); !ok {
			break
		}
		n++
	}
	if n != 10 {
		t.Fatalf("%d allowed after a second, want the rate of 10", n)
	}
	l.allow("con_c", now.Add(2*time.Hour)) // sweeps the refilled buckets
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets kept after a long quiet, want only the new one", len(l.buckets))
	}
}

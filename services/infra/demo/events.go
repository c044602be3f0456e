package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// DefaultEventEvery is how often the simulator sends a GetResponse event to one
// of the demo connections whose callbacks it holds.
const DefaultEventEvery = 20 * time.Second

// DeliverTo lets the simulated GetResponse send its webhooks and callbacks to
// grconnect's own handler in-process (the base URL may not be reachable from the
// server itself, as for grconnect's calls to the simulator).
func (d *Mode) DeliverTo(h http.Handler) {
	d.Fake.SetEventClient(&http.Client{Transport: inProcess{prefix: d.baseURL + "/", handler: h, next: http.DefaultTransport}})
}

// inProcess serves requests to grconnect's base URL with its handler.
type inProcess struct {
	prefix  string
	handler http.Handler
	next    http.RoundTripper
}

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(r.URL.String(), t.prefix) {
		return t.next.RoundTrip(r)
	}
	in := r.Clone(r.Context())
	in.RemoteAddr, in.RequestURI = "127.0.0.1:0", r.URL.RequestURI()
	if in.Body == nil {
		in.Body = http.NoBody // a server's request always has one
	}
	rec := httptest.NewRecorder()
	t.handler.ServeHTTP(rec, in)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// Run is the simulator's own activity until ctx ends: every EventEvery one demo
// account whose callbacks grconnect registered gets an event, as a callback
// (subscribe, open, click) or, every third time, as a webhook from GetResponse's
// panel posted to the same events URL, so the demo's timelines show events
// arriving.
func (d *Mode) Run(ctx context.Context) {
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.EventEvery):
		}
		d.fireOne(ctx, n)
	}
}

// fireOne sends the n-th simulated event.
func (d *Mode) fireOne(ctx context.Context, n int) {
	accounts := d.Fake.CallbackAccounts()
	if len(accounts) == 0 {
		return
	}
	slices.Sort(accounts)
	account := accounts[rand.IntN(len(accounts))]
	cb, ok := d.Fake.Callbacks(account)
	if !ok {
		return
	}
	contact := fmt.Sprintf("reader-%d@example.com", rand.IntN(900)+100)
	if n%3 == 2 {
		types := []string{"contact_subscribed", "contact_opened_message", "contact_clicked_message_link"}
		d.Fake.FireWebhook(ctx, cb.URL, getresponsetest.WebhookEvent{Type: types[rand.IntN(len(types))], AccountID: account, ContactEmail: contact})
		return
	}
	var on []string
	for _, a := range []string{"subscribe", "open", "click"} {
		if cb.Actions[a] {
			on = append(on, a)
		}
	}
	if len(on) == 0 {
		return
	}
	action := on[rand.IntN(len(on))]
	_, _ = d.Fake.FireCallback(ctx, account, action, getresponsetest.CallbackParams(action, account, contact))
}

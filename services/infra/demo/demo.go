// Package demo is demo mode: a simulated GetResponse served inside grconnect and an
// app pointed at it, so a new user can click through the whole flow without a
// GetResponse account. The simulator's state is kept in the database under the demo
// app, so a restarted demo's connections keep working, and the first start seeds a
// few dozen connections in every state. server.New wires it; the domain packages
// never import it.
package demo

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// Prefix is where demo mode serves its simulated GetResponse.
const Prefix = "/demo-getresponse"

// Mode is demo mode running: the simulated GetResponse and the app pointed at it.
type Mode struct {
	Fake *getresponsetest.Fake
	App  *models.App
	// EventEvery is how often Run sends an event (DefaultEventEvery); set it
	// before Run.
	EventEvery time.Duration
	baseURL    string
	saver      *saver
}

// Setup creates the simulated GetResponse with the state it had when the demo last
// stopped and, once, the demo app (updating its URLs when the base URL changed), and
// registers the app with the simulator. From then on every change of the
// simulator's state is saved (coalesced) until Close.
func Setup(ctx context.Context, store *models.Store, apps *services.Apps, box *secrets.Box, baseURL string, log *slog.Logger) (*Mode, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sv := &saver{store: store, box: box, log: log}
	fake := getresponsetest.New(getresponsetest.Options{Prefix: Prefix, OnChange: sv.changed})
	authURL := baseURL + Prefix + "/oauth2_authorize.html"
	apiURL := baseURL + Prefix + "/v3"
	app, err := store.DemoApp(ctx)
	switch {
	case errors.Is(err, models.ErrNotFound):
		app, err = apps.Create(ctx, services.AppInput{
			Name: "Demo app", ClientID: "demo-" + models.RandomToken(5), ClientSecret: models.RandomToken(20),
			Edition: "standard", AuthURL: authURL, APIURL: apiURL,
		})
		if err != nil {
			return nil, err
		}
		// Its connections register GetResponse callbacks at the simulator, which
		// then sends them events (Run).
		app.Demo, app.CallbackActions = true, strings.Join(services.CallbackActions, ",")
		if err := store.UpdateApp(ctx, app); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case app.AuthURL != authURL || app.APIURL != apiURL:
		app.AuthURL, app.APIURL = authURL, apiURL
		if err := store.UpdateApp(ctx, app); err != nil {
			return nil, err
		}
	}
	if err := sv.restore(ctx, app.ID, fake); err != nil {
		return nil, err
	}
	secret, err := box.Open(app.ClientSecretEnc, secrets.AAD("app", app.ID, "client_secret"))
	if err != nil {
		return nil, err
	}
	// After the restore, which brings back the client as it was: the base URL, and
	// so the redirect URL, may have changed since.
	fake.AddClient(app.ClientID, secret, baseURL+"/oauth/callback")
	sv.start(app.ID, fake)
	return &Mode{Fake: fake, App: app, EventEvery: DefaultEventEvery, baseURL: baseURL, saver: sv}, nil
}

// Close saves the simulator's last state and stops it.
func (d *Mode) Close() {
	d.saver.stop()
	d.Fake.Close()
}

// Transport sends grconnect's own calls to the simulator in-process, so demo mode
// works whether or not the base URL is reachable from the server itself; other
// requests go to next.
func (d *Mode) Transport(next http.RoundTripper) http.RoundTripper {
	return demoTransport{prefix: d.baseURL + Prefix + "/", handler: d.Fake, next: next}
}

type demoTransport struct {
	prefix  string
	handler http.Handler
	next    http.RoundTripper
}

func (t demoTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(r.URL.String(), t.prefix) {
		return t.next.RoundTrip(r)
	}
	rec := httptest.NewRecorder()
	t.handler.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

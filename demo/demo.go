// Package demo is demo mode: a simulated GetResponse served inside grconnect and an
// app pointed at it, so a new user can click through the whole flow without a
// GetResponse account. main wires it; the domain packages never import it.
package demo

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/secrets"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// Prefix is where demo mode serves its simulated GetResponse.
const Prefix = "/demo-getresponse"

// Mode is demo mode running: the simulated GetResponse and the app pointed at it.
type Mode struct {
	Fake    *getresponsetest.Fake
	App     *models.App
	baseURL string
}

// Setup creates the simulated GetResponse and, once, the demo app (updating its
// URLs when the base URL changed), and registers the app with the simulator.
func Setup(ctx context.Context, store *models.Store, apps *services.Apps, box *secrets.Box, baseURL string) (*Mode, error) {
	fake := getresponsetest.New(getresponsetest.Options{Prefix: Prefix})
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
		app.Demo = true
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
	secret, err := box.Open(app.ClientSecretEnc, secrets.AAD("app", app.ID, "client_secret"))
	if err != nil {
		return nil, err
	}
	fake.AddClient(app.ClientID, secret, baseURL+"/oauth/callback")
	return &Mode{Fake: fake, App: app, baseURL: baseURL}, nil
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

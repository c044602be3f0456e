package demo

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/tokens"
)

// The demo's customers: first names, last names and companies combine into
// different people at different companies (the lists' lengths are coprime).
var (
	seedFirst     = []string{"Ada", "Bruno", "Chloé", "Dmitri", "Elif", "Farah", "Gustav", "Hana", "Igor", "Jana", "Kofi", "Lena"}
	seedLast      = []string{"Novak", "Silva", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Kowalczyk", "Haddad", "Costa", "Fischer"}
	seedCompanies = []string{"Bakery", "Bikes", "Studio", "Garden", "Books", "Coffee", "Yoga", "Outdoor", "Design", "Ceramics", "Travel"}
)

// SeedConnections is how many connections the first start of a demo gives the
// demo app; SeedBrokenConnections how many its practice app gets.
const (
	SeedConnections       = 36
	SeedBrokenConnections = 5
)

// BrokenAppName names the practice app: GetResponse rejects its client secret
// (it was regenerated in GetResponse), until the operator pastes the new one
// from the simulator's applications page.
const BrokenAppName = "Webshop plugin"

// fate is what becomes of a seeded connection.
type fate int

const (
	fateActive fate = iota
	// fateNeedsReconnect: GetResponse rejected the refresh token some hours ago.
	fateNeedsReconnect
	// fateBlocked: GetResponse answers every refresh with 1016 (temporarily
	// blocked), and keeps doing so: the connection keeps failing.
	fateBlocked
	// fateOutage: GetResponse fails for this account until an outage ends, an
	// hour after the seeding.
	fateOutage
	fateDisconnected
	// fatePaused: a connection of the practice app, whose refreshes pause since
	// GetResponse rejected the app's credentials.
	fatePaused
)

// fateOf says what becomes of the demo app's i-th connection: most stay active,
// four need a reconnect, one keeps failing, one waits out an outage, three were
// disconnected.
func fateOf(i int) fate {
	switch {
	case i < SeedConnections-9:
		return fateActive
	case i < SeedConnections-5:
		return fateNeedsReconnect
	case i == SeedConnections-5:
		return fateBlocked
	case i == SeedConnections-4:
		return fateOutage
	}
	return fateDisconnected
}

// The demo's rhythm: tokens live an hour and are refreshed 10 minutes before
// they expire, so a live connection refreshes every 50 minutes.
const (
	tokenLife    = time.Hour
	refreshEvery = 50 * time.Minute
	// brokenSince is how long ago GetResponse first rejected the practice app.
	brokenSince = 2 * time.Hour
	// outageLeft is how long after the seeding the outage of fateOutage ends.
	outageLeft = time.Hour
)

// seeded is one connection made through the real flow, with what it is to become.
type seeded struct {
	conn  *models.Connection
	fate  fate
	index int // among all seeded connections
}

// Seed gives a new demo a believable past, once per database: SeedConnections
// connections of the demo app and SeedBrokenConnections of a practice app whose
// credentials GetResponse rejects, each made through the real flow (a link, the
// simulated consent, the callback, so refresh, test calls and the proxy work on
// them), then backdated over the last 30 days with their timelines and the daily
// refresh counts: most active, their tokens expiring at different times, some
// needing a reconnect, one that keeps failing, one waiting out an outage, some
// disconnected, and the practice app's paused. No refresh runs: the seeding logs
// no failure. A demo app that already has connections is left alone. It reports
// how many connections it made.
func (d *Mode) Seed(ctx context.Context, store *models.Store, apps *services.Apps, connect *services.Connect) (int, error) {
	first, err := store.ClaimDemoSeeding(ctx, d.App.ID)
	if err != nil || !first {
		return 0, err
	}
	if n, err := store.CountLiveConnections(ctx, d.App.ID); err != nil || n > 0 {
		return 0, err
	}
	now := models.Now()
	var made []seeded
	for i := range SeedConnections {
		f := fateOf(i)
		conn, err := d.seedOne(ctx, connect, d.App, i, f)
		if err != nil {
			return len(made), fmt.Errorf("demo mode: seed connection %d: %w", i+1, err)
		}
		made = append(made, seeded{conn: conn, fate: f, index: i})
	}
	broken, err := d.practiceApp(ctx, store, apps)
	if err != nil {
		return len(made), err
	}
	for b := range SeedBrokenConnections {
		i := SeedConnections + b
		conn, err := d.seedOne(ctx, connect, broken, i, fatePaused)
		if err != nil {
			return len(made), fmt.Errorf("demo mode: seed connection %d: %w", i+1, err)
		}
		made = append(made, seeded{conn: conn, fate: fatePaused, index: i})
	}
	// What GetResponse does from now on: one account blocked for good, one in an
	// outage for the next hour, and the practice app's secret regenerated.
	for _, s := range made {
		switch s.fate {
		case fateBlocked:
			err = d.Fake.SetBlocked(s.conn.AccountID, 1016)
		case fateOutage:
			err = d.Fake.SetOutage(s.conn.AccountID, now.Add(outageLeft))
		}
		if err != nil {
			return len(made), err
		}
	}
	d.Fake.AddClient(broken.ClientID, models.RandomToken(20), d.baseURL+"/oauth/callback")

	var h models.DemoHistory
	var outcomes []outcome
	for _, s := range made {
		past, events, o := history(s, len(made), now)
		h.Connections = append(h.Connections, past)
		h.Events = append(h.Events, events...)
		outcomes = append(outcomes, o...)
	}
	h.Days = dailyCounts(outcomes, now)
	// GetResponse rejected the practice app two hours ago: its connections pause,
	// the operator is told; its next probe comes a few minutes after this start.
	const reason = "invalid_client"
	since := now.Add(-brokenSince)
	h.Apps = []models.DemoAppHealth{{AppID: broken.ID, Health: models.AppCredentialsRejected, Reason: reason, Since: since, RetryAt: now.Add(5 * time.Minute)}}
	h.Events = append(h.Events, models.Event{AppID: &broken.ID, Type: models.EventAppUnhealthy, Actor: "system", CreatedAt: since,
		Message: "App unhealthy: " + tokens.AppHealthAdvice(models.AppCredentialsRejected, reason)})
	if err := store.WriteDemoHistory(ctx, h); err != nil {
		return len(made), err
	}
	d.saver.flush()
	return len(made), nil
}

// practiceApp registers the app to practise on, with the simulator.
func (d *Mode) practiceApp(ctx context.Context, store *models.Store, apps *services.Apps) (*models.App, error) {
	secret := models.RandomToken(20)
	app, err := apps.Create(ctx, services.AppInput{
		Name: BrokenAppName, ClientID: "demo-shop-" + models.RandomToken(4), ClientSecret: secret,
		Edition: "standard", AuthURL: d.App.AuthURL, APIURL: d.App.APIURL, SupportContact: "support@webshop.example",
	})
	if err != nil {
		return nil, err
	}
	app.Demo = true
	if err := store.UpdateApp(ctx, app); err != nil {
		return nil, err
	}
	d.Fake.AddClient(app.ClientID, secret, d.baseURL+"/oauth/callback")
	return app, nil
}

// person is the i-th demo customer: name, company and the slug of the company,
// which is also the customer's reference at the operator.
func person(i int) (first, last, company, slug string) {
	first, last = seedFirst[i%len(seedFirst)], seedLast[(i*3)%len(seedLast)]
	company = last + " " + seedCompanies[(i*7)%len(seedCompanies)]
	slug = strings.ToLower(strings.ReplaceAll(asciiName(company), " ", "-"))
	return first, last, company, slug
}

// seedOne connects one new simulated account for the i-th demo customer.
func (d *Mode) seedOne(ctx context.Context, connect *services.Connect, app *models.App, i int, f fate) (*models.Connection, error) {
	first, last, company, slug := person(i)
	email := strings.ToLower(asciiName(first) + "@" + slug + ".example")
	// Accounts a visitor may reconnect stay on the consent page; the others would
	// only crowd it.
	listed := f == fateNeedsReconnect || f == fateDisconnected
	accountID := d.Fake.AddAccount(getresponsetest.Account{
		Unlisted: !listed, Email: email, FirstName: first, LastName: last, CompanyName: company,
		TimeFormat: "24h", TimeZoneName: "UTC", TimeZoneOffset: "+00:00",
	})
	link, err := connect.CreateLink(ctx, services.LinkInput{AppID: app.ID, CustomerRef: slug, CreatedBy: "demo"})
	if err != nil {
		return nil, err
	}
	token := link.URL[strings.LastIndex(link.URL, "/")+1:]
	nonce := models.RandomToken(20)
	authURL, err := connect.Start(ctx, services.StartInput{Token: token, BrowserNonce: nonce})
	if err != nil {
		return nil, err
	}
	state, err := queryParam(authURL, "state")
	if err != nil {
		return nil, err
	}
	outcome := getresponsetest.OutcomeApprove
	if f == fateNeedsReconnect {
		outcome = getresponsetest.OutcomeApproveRejectRefresh // its refresh token is dead at GetResponse too
	}
	redirect, err := d.Fake.Decide(getresponsetest.Consent{ClientID: app.ClientID, State: state, AccountID: accountID, Outcome: outcome})
	if err != nil {
		return nil, err
	}
	code, err := queryParam(redirect, "code")
	if err != nil {
		return nil, err
	}
	res, err := connect.Callback(ctx, services.CallbackInput{State: state, Code: code, BrowserNonce: nonce})
	if err != nil {
		return nil, err
	}
	return res.Connection, nil
}

func queryParam(raw, name string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	v := u.Query().Get(name)
	if v == "" {
		return "", fmt.Errorf("no %s in %s", name, u.Path)
	}
	return v, nil
}

// asciiName makes a name usable in an e-mail address.
func asciiName(s string) string {
	return strings.NewReplacer("é", "e", "ö", "o").Replace(s)
}

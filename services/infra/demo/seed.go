package demo

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/tokens"
)

// seedPeople are the demo customers' account holders: first names, last names and
// companies combine into SeedConnections different accounts.
var (
	seedFirst     = []string{"Ada", "Bruno", "Chloé", "Dmitri", "Elif", "Farah", "Gustav", "Hana", "Igor", "Jana", "Kofi", "Lena"}
	seedLast      = []string{"Novak", "Silva", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Kowalczyk", "Haddad", "Costa"}
	seedCompanies = []string{"Bakery", "Bikes", "Studio", "Garden Supply", "Books", "Coffee Roasters", "Yoga", "Outdoor", "Design"}
)

// SeedConnections is how many demo connections the first start of a demo makes.
const SeedConnections = 36

// seedPlan says what becomes of the i-th seeded connection: most stay active, and
// every fourth of the rest needs a reconnect, is failing to refresh, or is
// disconnected, so that every state can be seen and tried.
func seedPlan(i int) (outcome getresponsetest.Outcome, then models.Status) {
	switch {
	case i < SeedConnections-12:
		return getresponsetest.OutcomeApprove, models.StatusActive
	case i%3 == 0:
		return getresponsetest.OutcomeApproveRejectRefresh, models.StatusNeedsReconnect
	case i%3 == 1:
		return getresponsetest.OutcomeApproveOutage, models.StatusRefreshFailing
	}
	return getresponsetest.OutcomeApprove, models.StatusDisconnected
}

// Seed makes SeedConnections demo connections in every state, once per database:
// each goes through the real flow (a link, the simulated consent, the callback),
// so its tokens are the simulator's own and refresh, test calls and the proxy
// work on it. A demo app that already has connections is left alone. It reports
// how many connections it made.
func (d *Mode) Seed(ctx context.Context, store *models.Store, connect *services.Connect, connections *services.Connections, tokens *tokens.Tokens) (int, error) {
	first, err := store.ClaimDemoSeeding(ctx, d.App.ID)
	if err != nil || !first {
		return 0, err
	}
	if n, err := store.CountLiveConnections(ctx, d.App.ID); err != nil || n > 0 {
		return 0, err
	}
	made := 0
	for i := range SeedConnections {
		outcome, then := seedPlan(i)
		// Accounts a visitor may reconnect stay on the consent page; the others would
		// only crowd it.
		listed := then == models.StatusNeedsReconnect || then == models.StatusDisconnected
		conn, err := d.seedOne(ctx, connect, i, outcome, listed)
		if err != nil {
			return made, fmt.Errorf("demo mode: seed connection %d: %w", i+1, err)
		}
		made++
		switch then {
		case models.StatusNeedsReconnect, models.StatusRefreshFailing:
			// The refresh fails as planned (invalid_grant, or 503): that is the state.
			_, _ = tokens.Refresh(ctx, conn.ID, "system")
		case models.StatusDisconnected:
			if err := connections.Disconnect(ctx, conn.ID, "system"); err != nil {
				return made, err
			}
		default:
			if i%4 == 0 {
				// A few refreshes, so the overview's refresh chart shows today.
				if _, err := tokens.Refresh(ctx, conn.ID, "system"); err != nil {
					return made, err
				}
			}
		}
	}
	d.saver.flush()
	return made, nil
}

// seedOne connects one new simulated account for customer demo-customer-NN.
func (d *Mode) seedOne(ctx context.Context, connect *services.Connect, i int, outcome getresponsetest.Outcome, listed bool) (*models.Connection, error) {
	first, last := seedFirst[i%len(seedFirst)], seedLast[(i*5)%len(seedLast)]
	company := last + " " + seedCompanies[(i*7)%len(seedCompanies)]
	email := strings.ToLower(fmt.Sprintf("%s.%s%d@example.com", asciiName(first), asciiName(last), i+1))
	accountID := d.Fake.AddAccount(getresponsetest.Account{
		Unlisted: !listed, Email: email, FirstName: first, LastName: last, CompanyName: company,
		TimeFormat: "24h", TimeZoneName: "UTC", TimeZoneOffset: "+00:00",
	})
	link, err := connect.CreateLink(ctx, services.LinkInput{AppID: d.App.ID, CustomerRef: fmt.Sprintf("demo-customer-%02d", i+1), CreatedBy: "demo"})
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
	redirect, err := d.Fake.Decide(getresponsetest.Consent{ClientID: d.App.ClientID, State: state, AccountID: accountID, Outcome: outcome})
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

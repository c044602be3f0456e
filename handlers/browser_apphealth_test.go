package handlers_test

import (
	"strings"
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestBrowserAppUnavailableOnAPhone: in Chromium at a phone's 390 px, with a
// 100-character app name and a long support address: a customer whose code
// exchange GetResponse refuses for the app sees that the integration is
// unavailable, that the operator has been told, and the support contact — no Try
// again — and a connect page opened afterwards says the same instead of the
// button. The operator's list, connection page and overview read "Paused — app
// <name>", and Refresh now says it probes the app. Every page fits the width and
// passes the accessibility check.
func TestBrowserAppUnavailableOnAPhone(t *testing.T) {
	ctx := browserTest(t)
	shots := newScreenshots(t, "apphealth")
	f := newConnectFixture(t, getresponsetest.Options{})
	support := "support-with-a-long-address@" + strings.Repeat("sub.", 8) + "example.com"
	if err := f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).Updates(map[string]any{"name": longAppName, "support_contact": support}).Error; err != nil {
		t.Fatal(err)
	}
	conn := f.connect("customer-1", "")

	customer := newSession(t, ctx, f.srv.URL, "customer", shots)
	customer.phone(true)
	customer.open(f.makeLink("customer-2", ""))
	customer.click(`[data-testid="connect-button"]`)
	f.fake.FailToken(getresponsetest.TokenInvalidClient, 1)
	customer.wantStatus(customer.click(`[data-testid="consent-approve"]`), 503, "the callback of a refused exchange")
	customer.wantText("h1", "This integration is unavailable for now")
	customer.wantText(`[data-testid="problem-message"]`, "has been told")
	customer.wantText(`[data-testid="problem-support"]`, support)
	if n := customer.count(`[data-testid="try-again"]`); n != 0 {
		customer.fatalf("an operator's problem offers the customer Try again")
	}
	customer.fits("phone-customer-app-unavailable")
	customer.page("customer-app-unavailable")

	customer.wantStatus(customer.open(f.makeLink("customer-3", "")), 503, "the connect page of a refused app")
	customer.wantText("h1", "This integration is unavailable for now")
	if n := customer.count(`[data-testid="connect-button"]`); n != 0 {
		customer.fatalf("the connect page of a refused app still offers the button to GetResponse")
	}
	customer.fits("phone-customer-connect-unavailable")
	customer.page("customer-connect-unavailable")

	op := newSession(t, ctx, f.srv.URL, "operator", shots)
	op.phone(true)
	op.open("/login")
	op.fill("#email", annEmail)
	op.fill("#password", annPass)
	op.click(`[data-testid="login-submit"]`)
	label := "Paused — app " + longAppName
	op.open("/connections")
	op.wantText(`[data-testid="connection-row"] [data-testid="status"]`, label)
	op.fits("phone-connections-paused")
	op.open("/connections/" + conn.ID)
	op.wantText(`.title-row [data-testid="status"]`, label)
	op.wantText(`[data-testid="refresh-now"]`, "Refresh now (probes the app)")
	op.fits("phone-connection-paused")
	op.page("connection-paused")
	op.open("/")
	op.wantText(`[data-testid="count-paused"]`, "1")
	op.fits("phone-overview-paused")
}

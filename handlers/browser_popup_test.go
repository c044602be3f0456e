package handlers_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// popupResult is what the operator's page receives.
type popupResult struct {
	Status       string `json:"status"`
	ConnectionID string `json:"connection_id"`
	Error        string `json:"error"`
}

// operatorSite serves docs/connect-popup.html, the example page, on an origin of
// its own, pointed at grconnect and a connect link.
func operatorSite(t *testing.T, grconnect string, link *string) *httptest.Server {
	t.Helper()
	page, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "connect-popup.html"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/integrations" {
			http.NotFound(w, r)
			return
		}
		html := strings.ReplaceAll(string(page), "https://connect.example.com", grconnect)
		html = strings.ReplaceAll(html, "CONNECT_URL", *link)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(html))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestBrowserConnectPopup: the operator's page, on another origin, loads
// /static/connect/v1.js from grconnect and opens a connect link in a popup; the
// customer connects on the simulated GetResponse; the popup reports
// {status: "connected", connection_id} to the opener with postMessage and closes. A
// blocked popup falls back to the whole page going through the flow.
func TestBrowserConnectPopup(t *testing.T) {
	ctx := browserTest(t)
	var link string
	f := newConnectFixture(t, getresponsetest.Options{})
	site := operatorSite(t, f.srv.URL, &link)
	// The operator's page is on one of the app's return origins.
	if err := f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).Update("return_origins", site.URL).Error; err != nil {
		t.Fatal(err)
	}
	f.store.AppsWritten() // a raw write: the app cache must hear of it
	link = f.makeLink("customer-popup", "")
	shots := newScreenshots(t, "popup")

	op := newSession(t, ctx, site.URL, "operator's site", shots)
	op.wantStatus(op.open("/integrations"), 200, "the operator's page")
	if !evalIn[bool](op, `typeof window.GRConnect === "object" && window.GRConnect.version === 1`) {
		op.fatalf("connect.js did not load from grconnect")
	}
	opened := chromedp.WaitNewTarget(op.ctx, func(info *target.Info) bool { return info.URL != "" })
	op.do("click Connect GetResponse", chromedp.Click(chromedp.CSS("#connect-getresponse"), chromedp.NodeVisible))
	var popupID target.ID
	select {
	case popupID = <-opened:
	case <-time.After(15 * time.Second):
		op.fatalf("no popup opened")
	}
	popupCtx, cancel := chromedp.NewContext(op.ctx, chromedp.WithTargetID(popupID))
	defer cancel()
	popup := &session{t: t, ctx: popupCtx, base: f.srv.URL, who: "popup", shots: shots, checked: map[string]bool{}}
	if _, err := chromedp.Run(popupCtx, chromedp.WaitVisible(chromedp.CSS(`[data-testid="connect-button"]`))); err != nil {
		popup.fatalf("the connect page did not load: %v", err)
	}
	loc := evalIn[string](popup, "location.href")
	if u, _ := url.Parse(loc); u.Query().Get("popup") != site.URL || !strings.HasPrefix(loc, link) {
		popup.fatalf("the popup opened %s, want the link with popup=%s", loc, site.URL)
	}
	popup.page("popup-connect")
	popup.click(`[data-testid="connect-button"]`)
	popup.wantText(`[data-testid="consent-client"]`, "asks for access")
	popup.click(`[data-testid="consent-approve"]`)

	// The opener learns the outcome.
	res, err := chromedp.Run(op.ctx, chromedp.Poll[popupResult]("window.grconnectResult",
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		op.fatalf("no result reached the operator's page: %v", err)
	}
	var conn models.Connection
	if err := f.store.DB().Where("customer_ref = ?", "customer-popup").First(&conn).Error; err != nil {
		t.Fatal(err)
	}
	if res.Status != "connected" || res.ConnectionID != conn.ID {
		op.fatalf("the operator's page received %+v, want connected with %s", res, conn.ID)
	}
	op.wantText("#connect-status", "Connected. Connection "+conn.ID)
	// The popup closed itself.
	deadline := time.Now().Add(10 * time.Second)
	for {
		targets, err := chromedp.Targets(op.ctx)
		if err != nil {
			t.Fatal(err)
		}
		open := false
		for _, ti := range targets {
			open = open || ti.TargetID == popupID
		}
		if !open {
			break
		}
		if time.Now().After(deadline) {
			op.fatalf("the popup is still open after connecting")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Popups blocked: the page itself goes to the connect link (without popup=).
	link = f.makeLink("customer-no-popup", "")
	op.open("/integrations")
	op.do("block popups", chromedp.Evaluate[chromedp.Void](`window.open = function () { return null; }`))
	op.follow("click Connect GetResponse", chromedp.Click(chromedp.CSS("#connect-getresponse"), chromedp.NodeVisible))
	if loc := evalIn[string](op, "location.href"); loc != link {
		op.fatalf("with popups blocked the page went to %s, want %s", loc, link)
	}
	op.wantText("h1", "Connect your GetResponse account")
}

// mobile emulates a phone screen width (0 ends the emulation).
func mobile(width int64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if width == 0 {
			_, err := cdp.Call(ctx, t, emulation.ClearDeviceMetricsOverride, cdp.Empty{})
			return err
		}
		_, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: width, Height: 844, DeviceScaleFactor: 1, Mobile: true,
		})
		return err
	})
}

// TestBrowserCustomerPagesOnAPhone: the connect, MAX-address, success and problem
// pages fit a 390 px screen without horizontal scrolling, with a long app name,
// customer reference and account e-mail, and pass the accessibility check.
func TestBrowserCustomerPagesOnAPhone(t *testing.T) {
	ctx := browserTest(t)
	f := newConnectFixture(t, getresponsetest.Options{})
	long := "Acme-Templates-International-Holdings-With-A-Very-Long-Unbreakable-Name-For-Testing"
	ref := "customer-" + strings.Repeat("x", 120)
	if err := f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).
		Updates(map[string]any{"name": long, "support_contact": "support-with-a-long-address@" + strings.Repeat("sub.", 8) + "example.com"}).Error; err != nil {
		t.Fatal(err)
	}
	f.store.AppsWritten() // a raw write: the app cache must hear of it
	acct := f.fake.AddAccount(getresponsetest.Account{Email: "someone.with.a." + strings.Repeat("long", 12) + ".address@example.com", FirstName: "Long"})
	link := f.makeLink(ref, "")
	customer := newSession(t, ctx, f.srv.URL, "customer on a phone", newScreenshots(t, "phone"))
	customer.do("emulate a 390 px phone", mobile(390))
	fits := func(step string) {
		t.Helper()
		if w := evalIn[int](customer, "document.documentElement.scrollWidth"); w > 390 {
			customer.fatalf("%s: the page is %d px wide on a 390 px screen", step, w)
		}
		customer.page(step)
	}
	customer.open(link)
	fits("phone-connect")
	customer.click(`[data-testid="connect-button"]`)
	customer.click(`[data-testid="consent-approve"]`) // the first account
	customer.open(link)
	fits("phone-used-link")

	// A MAX app's page asks for the address.
	if err := f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).Updates(map[string]any{"edition": "max_us"}).Error; err != nil {
		t.Fatal(err)
	}
	f.store.AppsWritten() // a raw write: the app cache must hear of it
	maxLink := f.makeLink(ref+"-max", "")
	customer.open(maxLink)
	customer.wantText(`label[for="max_domain"]`, "Your GetResponse MAX address")
	customer.click(`[data-testid="connect-button"]`) // without an address
	customer.wantText(`[data-testid="error-max_domain"]`, "Enter your GetResponse MAX address")
	fits("phone-max-address")
	if err := f.store.DB().Model(&models.App{}).Where("id = ?", f.appID).Updates(map[string]any{"edition": "standard"}).Error; err != nil {
		t.Fatal(err)
	}
	f.store.AppsWritten() // a raw write: the app cache must hear of it

	// The success page, with the long e-mail address.
	customer.open(f.makeLink(ref+"-2", ""))
	customer.click(`[data-testid="connect-button"]`)
	customer.do("pick the long account", chromedp.Click(chromedp.CSS(`input[value="`+acct+`"]`), chromedp.NodeVisible))
	customer.click(`[data-testid="consent-approve"]`)
	customer.wantText(`[data-testid="account-email"]`, "someone.with.a.")
	fits("phone-success")
	customer.do("end the phone emulation", mobile(0))
}

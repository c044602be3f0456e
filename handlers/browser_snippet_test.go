package handlers_test

import (
	_ "embed"
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
)

var snippetRe = regexp.MustCompile(`(?s)<textarea id="link-snippet"[^>]*>(.*?)</textarea>`)

// TestBrowserSnippetOnAThirdPartyPage pastes the embeddable "Connect GetResponse"
// button into a plain page on another origin, checks it renders as a button, and
// clicks it through to the customer's connect page.
func TestBrowserSnippetOnAThirdPartyPage(t *testing.T) {
	t.Parallel()
	ctx := browserTest(t)
	app := newDemoApp(t)
	op := app.setup(annEmail, annPass)
	f := &connectFixture{testApp: app, op: op, appID: demoAppID(t, app)}
	link := f.makeLink("customer-snippet", "")
	var snippet string
	for _, p := range app.pages {
		if m := snippetRe.FindStringSubmatch(p); m != nil {
			snippet = html.UnescapeString(m[1])
		}
	}
	if snippet == "" {
		t.Fatal("no snippet on the link page")
	}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!DOCTYPE html><html lang="en"><head><title>Integrations · Example</title></head>
<body style="font-family: serif; background: #fafafa"><main><h1>Integrations</h1><p>Connect your email marketing:</p>` + snippet + `</main></body></html>`))
	}))
	defer site.Close()

	customer := newSession(t, ctx, site.URL, "customer on the operator's site", newScreenshots(t, "snippet"))
	customer.wantStatus(customer.open(site.URL+"/"), 200, "the third-party page")
	customer.wantText("a", "Connect GetResponse")
	// It looks like a button: padded, coloured, not underlined — whatever the host page's styles.
	look := evalIn[map[string]string](customer, buttonLookJS)
	if look["bg"] == "rgba(0, 0, 0, 0)" || look["pad"] == "0px" || look["deco"] != "none" || look["display"] != "inline-flex" {
		t.Fatalf("the snippet does not render as a button: %v", look)
	}
	customer.page("third-party page")
	if status := customer.click("a"); status != 200 {
		t.Fatalf("clicking the button = %d", status)
	}
	if got := customer.path(); got != link[len(app.srv.URL):] {
		t.Fatalf("the button led to %s, want the connect link", got)
	}
	customer.wantText(`[data-testid="connect-button"]`, "Connect GetResponse")
}

// buttonLookJS reads the computed look of the page's first link.
//
//go:embed testdata/button-look.js
var buttonLookJS string

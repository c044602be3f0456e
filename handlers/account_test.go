package handlers_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// TestTimesInTheOperatorsZone: until a zone is stored the page asks the script for
// the browser's; the script's report is stored once and never replaces a choice;
// times then show in that zone with UTC on hover.
func TestTimesInTheOperatorsZone(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	page := f.op.get("/connections/" + conn.ID).body
	mustContain(t, page, "data-tz-detect", "UTC</span>")
	csrf := csrfRe.FindStringSubmatch(page)[1]

	report := func(zone string) response {
		return f.op.post("/account/time-zone", url.Values{"_csrf": {csrf}, "auto": {"1"}, "time_zone": {zone}})
	}
	if r := report("Not/AZone"); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("an unknown zone = %d", r.status)
	}
	if r := report("../../etc/passwd"); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("a path for a zone = %d", r.status)
	}
	if r := report("Asia/Tokyo"); r.status != http.StatusNoContent {
		t.Fatalf("the browser's zone = %d", r.status)
	}
	page = f.op.get("/connections/" + conn.ID).body
	mustNotContain(t, page, "data-tz-detect")
	if !regexp.MustCompile(`title="\d{4}-\d\d-\d\d \d\d:\d\d UTC"`).MatchString(page) || !strings.Contains(page, " JST</span>") {
		t.Error("times are not in Tokyo time with UTC on hover")
	}
	// A later report does not replace the stored zone; a choice on the account page does.
	report("Europe/Lisbon")
	mustContain(t, f.op.get("/account").body, `<option value="Asia/Tokyo" selected>`)
	r := f.op.submit("/account", "/account/time-zone", url.Values{"time_zone": {"America/New_York"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("choosing a zone = %d", r.status)
	}
	account := f.op.get("/account").body
	mustContain(t, account, `<option value="America/New_York" selected>`, "Times are now shown in America/New_York")
	if r := f.op.submit("/account", "/account/time-zone", url.Values{"time_zone": {"Mars/Olympus"}}); r.status != http.StatusUnprocessableEntity ||
		!strings.Contains(r.body, `data-testid="error-time_zone"`) {
		t.Fatalf("choosing an unknown zone = %d", r.status)
	}
	// The header links to the account page.
	mustContain(t, account, `href="/account"`)
}

// TestPasswordResetLink: another operator makes a one-time link, shown once; it sets
// a new password, signs the operator in, ends their other sessions and then stops
// working. Only its hash is stored.
func TestPasswordResetLink(t *testing.T) {
	app := newTestApp(t)
	ann := app.setup(annEmail, annPass)
	app.setupSecondOperator(ann, "bob@example.com", "bob password 1")
	bobSession := app.signIn("bob@example.com", "bob password 1")
	var bobID string
	app.store.DB().Table("operators").Where("email = ?", "bob@example.com").Pluck("id", &bobID)

	mustContain(t, ann.get("/operators").body, `href="/operators/`+bobID+`/reset-password"`)
	mustContain(t, ann.get("/operators/"+bobID+"/reset-password").body, "Reset the password of bob@example.com?")
	r := ann.submit("/operators/"+bobID+"/reset-password", "/operators/"+bobID+"/reset-password", nil)
	if r.status != http.StatusOK {
		t.Fatalf("make a reset link = %d", r.status)
	}
	m := regexp.MustCompile(`value="(http://[^"]+/reset-password/([a-z2-7]+))"`).FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no reset link on the page:\n%s", r.body)
	}
	link, token := m[1], m[2]
	mustContain(t, r.body, `data-testid="show-once"`)
	path := strings.TrimPrefix(link, app.srv.URL)

	visitor := app.browser()
	form := visitor.get(path)
	mustContain(t, form.body, "Choose a new password", "bob@example.com")
	mustNotContain(t, form.body, `data-testid="logout"`)
	if r := visitor.submit(path, path, url.Values{"password": {"short"}, "password_confirm": {"short"}}); r.status != http.StatusUnprocessableEntity ||
		!strings.Contains(r.body, `data-testid="error-password"`) {
		t.Fatalf("a short password = %d", r.status)
	}
	r = visitor.submit(path, path, url.Values{"password": {"bob new password"}, "password_confirm": {"bob new password"}})
	if r.status != http.StatusSeeOther || r.location() != "/" {
		t.Fatalf("reset = %d → %q", r.status, r.location())
	}
	mustContain(t, visitor.get("/").body, "Your new password is saved", "bob@example.com")
	// Bob's old session ended; the new password signs in; the link is spent.
	if r := bobSession.get("/operators"); r.status != http.StatusSeeOther {
		t.Errorf("bob's old session still works after the reset: %d", r.status)
	}
	app.signIn("bob@example.com", "bob new password")
	if r := app.browser().get(path); r.status != http.StatusGone {
		t.Errorf("a used link = %d, want 410", r.status)
	}
	var stored []string
	app.store.DB().Table("password_resets").Pluck("token_hash", &stored)
	for _, h := range stored {
		if strings.Contains(h, token) {
			t.Error("the reset token is stored in plaintext")
		}
	}
	for _, p := range app.pages {
		mustNotContain(t, p, "bob new password")
	}
	// The login page says how to get a link.
	mustContain(t, app.browser().get("/login").body, "operator reset-password --email")
	// Nobody resets their own password this way.
	var annID string
	app.store.DB().Table("operators").Where("email = ?", annEmail).Pluck("id", &annID)
	if r := ann.get("/operators/" + annID + "/reset-password"); r.status != http.StatusSeeOther || r.location() != "/account/password" {
		t.Errorf("resetting one's own password = %d → %q", r.status, r.location())
	}
}

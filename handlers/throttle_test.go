package handlers_test

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/grconnect/grconnect/services/infra/config"
)

// postLogin signs in without touching the test app's shared page list (safe from
// several goroutines), from the client address xff when it is set.
func (b *browser) postLogin(token, email, password, xff string) int {
	req, _ := http.NewRequest(http.MethodPost, b.app.srv.URL+"/login",
		strings.NewReader(url.Values{"_csrf": {token}, "email": {email}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Error(err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// loginToken loads /login and returns its CSRF token.
func (b *browser) loginToken() string {
	b.t.Helper()
	m := csrfRe.FindStringSubmatch(b.get("/login").body)
	if m == nil {
		b.t.Fatal("no CSRF field on /login")
	}
	return m[1]
}

// TestParallelWrongPasswordsAreThrottled: forty wrong passwords at once are not all
// judged: each attempt is reserved before its password is checked.
func TestParallelWrongPasswordsAreThrottled(t *testing.T) {
	t.Parallel()
	app := newTestApp(t)
	app.setup(annEmail, annPass)
	b := app.browser()
	token := b.loginToken()
	const parallel = 40
	codes := make([]int, parallel)
	var wg sync.WaitGroup
	for i := range parallel {
		wg.Go(func() { codes[i] = b.postLogin(token, annEmail, "wrong password number", "") })
	}
	wg.Wait()
	judged, throttled := 0, 0
	for _, c := range codes {
		switch c {
		case http.StatusUnauthorized:
			judged++
		case http.StatusTooManyRequests:
			throttled++
		default:
			t.Errorf("unexpected status %d", c)
		}
	}
	if judged > 5 || throttled != parallel-judged {
		t.Fatalf("%d attempts judged, %d throttled; want at most 5 judged (the account's limit)", judged, throttled)
	}
}

// TestLockoutSparesKnownBrowsers: a stranger's wrong passwords lock the account
// for new browsers only; the operator's usual browser still signs in.
func TestLockoutSparesKnownBrowsers(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, func(c *config.Config) { c.TrustedProxies = []*net.IPNet{mustCIDR("127.0.0.1/32")} })
	app.setup(annEmail, annPass)
	usual := app.signIn(annEmail, annPass) // now a known browser of Ann's
	if usual.cookieOf("grconnect_browser") == "" {
		t.Fatal("no known-browser cookie after signing in")
	}
	usual.submit("/", "/logout", nil)

	attacker := app.browser()
	token := attacker.loginToken()
	for i := range 8 {
		attacker.postLogin(token, annEmail, "guess number "+string(rune('a'+i)), "203.0.113.9")
	}
	if code := attacker.postLogin(token, annEmail, annPass, "203.0.113.9"); code != http.StatusTooManyRequests {
		t.Fatalf("the attacker's browser with the right password = %d, want 429", code)
	}
	// Ann, from her usual browser (another address), is not locked out.
	if code := usual.postLogin(usual.loginToken(), annEmail, annPass, "198.51.100.7"); code != http.StatusSeeOther {
		t.Fatalf("Ann's usual browser = %d, want 303 (signed in)", code)
	}
	// A forged known-browser cookie buys nothing.
	forged := app.withCookie("grconnect_browser", strings.Replace(usual.cookieOf("grconnect_browser"), ".", ".x", 1))
	if code := forged.postLogin(forged.loginToken(), annEmail, annPass, "198.51.100.8"); code != http.StatusTooManyRequests {
		t.Fatalf("a forged known-browser cookie = %d, want 429", code)
	}
}

// TestTrustedProxiesSeparateClients: behind a trusted proxy each client has its own
// address limit; without the setting X-Forwarded-For is ignored, so rotating it
// does not escape the limit.
func TestTrustedProxiesSeparateClients(t *testing.T) {
	t.Parallel()
	behind := newTestApp(t, func(c *config.Config) { c.TrustedProxies = []*net.IPNet{mustCIDR("127.0.0.0/8")} })
	behind.setup(annEmail, annPass)
	attacker := behind.browser()
	token := attacker.loginToken()
	for i := range 12 {
		attacker.postLogin(token, "someone"+string(rune('a'+i))+"@example.com", "wrong password", "203.0.113.9")
	}
	if code := attacker.postLogin(token, "x@example.com", "wrong password", "203.0.113.9"); code != http.StatusTooManyRequests {
		t.Fatalf("the attacker's address after 12 failures = %d, want 429", code)
	}
	victim := behind.browser()
	if code := victim.postLogin(victim.loginToken(), annEmail, annPass, "198.51.100.7"); code != http.StatusSeeOther {
		t.Fatalf("another client behind the same proxy = %d, want 303", code)
	}

	direct := newTestApp(t)
	direct.setup(annEmail, annPass)
	spoofer := direct.browser()
	token = spoofer.loginToken()
	for i := range 12 {
		spoofer.postLogin(token, "someone"+string(rune('a'+i))+"@example.com", "wrong password", "203.0.113."+string(rune('1'+i%9)))
	}
	if code := spoofer.postLogin(token, annEmail, annPass, "198.51.100.99"); code != http.StatusTooManyRequests {
		t.Fatalf("a spoofed X-Forwarded-For without a trusted proxy = %d, want 429", code)
	}
}

// TestOverlongEmailIsNotStored: an e-mail longer than any address is refused before
// it could become a throttle row of its own.
func TestOverlongEmailIsNotStored(t *testing.T) {
	t.Parallel()
	app := newTestApp(t)
	app.setup(annEmail, annPass)
	b := app.browser()
	long := strings.Repeat("a", 100000) + "@example.com"
	if code := b.postLogin(b.loginToken(), long, "wrong password", ""); code != http.StatusUnauthorized {
		t.Fatalf("an overlong email = %d, want 401", code)
	}
	var longest int
	if err := app.store.DB().Raw("SELECT COALESCE(MAX(LENGTH(key)), 0) FROM login_throttles").Scan(&longest).Error; err != nil {
		t.Fatal(err)
	}
	if longest > 300 {
		t.Fatalf("a throttle key of %d characters was stored", longest)
	}
}

// TestChangePasswordIsThrottled: guessing the current password on the change-password
// form (a stolen session, say) is limited like a sign-in.
func TestChangePasswordIsThrottled(t *testing.T) {
	t.Parallel()
	app := newTestApp(t)
	ann := app.setup(annEmail, annPass)
	form := func(current string) url.Values {
		return url.Values{"current": {current}, "password": {"new password 2"}, "password_confirm": {"new password 2"}}
	}
	for i := range 5 {
		if r := ann.submit("/account/password", "/account/password", form("guess "+string(rune('a'+i)))); r.status != http.StatusUnprocessableEntity {
			t.Fatalf("guess %d = %d, want 422", i+1, r.status)
		}
	}
	r := ann.submit("/account/password", "/account/password", form(annPass))
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("the sixth try = %d, want 429", r.status)
	}
	mustContain(t, r.body, "Too many failed")
	if op, _ := app.store.OperatorByEmail(t.Context(), annEmail); op.SessionEpoch != 0 {
		t.Fatal("the password changed while throttled")
	}
}

func mustCIDR(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

// TestThrottleDoesNotRevealAccounts: an address that is no operator's is throttled
// with the same words as an operator's, so the limit cannot tell who has an account.
func TestThrottleDoesNotRevealAccounts(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, func(c *config.Config) { c.TrustedProxies = []*net.IPNet{mustCIDR("127.0.0.1/32")} })
	app.setup(annEmail, annPass)
	answer := func(email, xff string) string {
		b := app.browser()
		token := b.loginToken()
		for range 5 {
			b.postLogin(token, email, "wrong password", xff)
		}
		req, _ := http.NewRequest(http.MethodPost, app.srv.URL+"/login", strings.NewReader(url.Values{"_csrf": {token}, "email": {email}, "password": {"wrong password"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", xff)
		r := b.do(req)
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("%s: sixth attempt = %d", email, r.status)
		}
		m := regexpMust(`data-testid="login-error">([^<]*)<`).FindStringSubmatch(r.body)
		if m == nil {
			t.Fatalf("%s: no error shown", email)
		}
		return m[1]
	}
	if known, unknown := answer(annEmail, "203.0.113.1"), answer("nobody@example.com", "203.0.113.2"); known != unknown {
		t.Fatalf("throttled answers differ:\n  operator:  %s\n  no one's:  %s", known, unknown)
	}
}

package handlers_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/config"
)

// TestRequestIDLeadsToTheLogLine: every answer names its request in X-Request-Id;
// the request's log line, an error page and an API error body carry the same ID.
func TestRequestIDLeadsToTheLogLine(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})

	page := f.op.get("/connections/con_nosuchthing")
	id := page.header.Get("X-Request-Id")
	if page.status != http.StatusNotFound || len(id) != 16 {
		t.Fatalf("error page = %d, X-Request-Id %q", page.status, id)
	}
	mustContain(t, page.body, `data-testid="request-id"`, "<code>"+id+"</code>")
	if !strings.Contains(f.logs.String(), `route=/connections/:id status=404`) || !strings.Contains(f.logs.String(), "request_id="+id) {
		t.Errorf("no log line with request_id=%s:\n%s", id, f.logs)
	}

	r := f.call(http.MethodGet, "/api/v1/connections/con_nosuchthing", nil)
	var body struct {
		Error struct {
			Code      string `json:"code"`
			RequestID string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.status != http.StatusNotFound {
		t.Fatalf("API error = %d %s", r.status, r.body)
	}
	if body.Error.RequestID == "" || body.Error.RequestID != r.header.Get("X-Request-Id") || body.Error.RequestID == id {
		t.Errorf("API error request_id %q, header %q (page's %q)", body.Error.RequestID, r.header.Get("X-Request-Id"), id)
	}
	if !strings.Contains(f.logs.String(), "request_id="+body.Error.RequestID) {
		t.Errorf("no log line for the API request %s", body.Error.RequestID)
	}

	// A successful answer has one too; each request its own.
	a, b := f.op.get("/"), f.op.get("/")
	if a.header.Get("X-Request-Id") == "" || a.header.Get("X-Request-Id") == b.header.Get("X-Request-Id") {
		t.Errorf("request IDs %q and %q", a.header.Get("X-Request-Id"), b.header.Get("X-Request-Id"))
	}
	// A customer's failed connect page shows it for their screenshot.
	customer := f.browser()
	bad := customer.get("/connect/nosuchtoken00000000000000000")
	if bad.status != http.StatusNotFound || !strings.Contains(bad.body, "<code>"+bad.header.Get("X-Request-Id")+"</code>") {
		t.Errorf("connect problem page = %d without its request ID", bad.status)
	}
}

// TestRequestIDFromATrustedProxyOnly: a reverse proxy listed in
// GRCONNECT_TRUSTED_PROXIES may name the request (one ID through both logs);
// anyone else's X-Request-Id is replaced, and so is a malformed one.
func TestRequestIDFromATrustedProxyOnly(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted bool
		sent    string
		kept    bool
	}{
		{"trusted proxy", true, "nginx-7f3a9c2e11d04b5a", true},
		{"trusted proxy, malformed", true, "has spaces\tand tabs", false},
		{"trusted proxy, too short", true, "abc", false},
		{"anyone", false, "nginx-7f3a9c2e11d04b5a", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := newTestApp(t, func(c *config.Config) {
				if tc.trusted {
					_, n, _ := net.ParseCIDR("127.0.0.0/8")
					c.TrustedProxies = append(c.TrustedProxies, n)
				}
			})
			req, _ := http.NewRequest(http.MethodGet, app.srv.URL+"/healthz", nil)
			req.Header.Set("X-Request-Id", tc.sent)
			res := app.browser().do(req)
			got := res.header.Get("X-Request-Id")
			if (got == tc.sent) != tc.kept || got == "" {
				t.Errorf("sent %q, answered %q (kept: %v, want %v)", tc.sent, got, got == tc.sent, tc.kept)
			}
		})
	}
}

// TestMetricsSeries: the new series are served, with values that follow what
// happened: GetResponse calls by kind and class, proxy answers by status, the
// webhook outbox, the refresher's backlog and the apps' health.
func TestMetricsSeries(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	if r := f.call(http.MethodGet, "/api/v1/connections/"+conn.ID+"/proxy/from-fields", nil); r.status != http.StatusOK {
		t.Fatalf("proxy = %d", r.status)
	}
	if r := f.call(http.MethodGet, "/api/v1/connections/"+conn.ID+"/proxy/no-such-resource", nil); r.status != http.StatusNotFound {
		t.Fatalf("proxy 404 = %d", r.status)
	}
	// One connection overdue by an hour; a pending webhook delivery five minutes old.
	now := time.Now().UTC()
	if err := f.store.DB().Exec("UPDATE connections SET expires_at = ? WHERE id = ?", now.Add(-time.Hour), conn.ID).Error; err != nil {
		t.Fatal(err)
	}
	if err := f.store.DB().Exec(`INSERT INTO webhook_deliveries (app_id, event_id, event_type, payload, status, next_attempt_at, created_at)
		VALUES (?, 1, 'connection.created', '{}', 'pending', ?, ?)`, f.appID, now, now.Add(-5*time.Minute)).Error; err != nil {
		t.Fatal(err)
	}
	if err := f.built.Metrics.Collect(t.Context()); err != nil {
		t.Fatal(err)
	}
	body := scrape(t, f.testApp)
	for _, want := range []string{
		`grconnect_getresponse_requests_total{class="2xx",kind="token"} `, // the code exchange and the credentials check
		`grconnect_getresponse_requests_total{class="2xx",kind="api"} 1`,  // the account lookup
		`grconnect_getresponse_requests_total{class="2xx",kind="proxy"} 1`,
		`grconnect_getresponse_requests_total{class="4xx",kind="proxy"} 1`,
		`grconnect_getresponse_request_duration_seconds_bucket{kind="proxy",le="+Inf"} 2`,
		`grconnect_getresponse_request_duration_seconds_count{kind="token"} `,
		`grconnect_proxy_requests_total{status="200"} 1`,
		`grconnect_proxy_requests_total{status="404"} 1`,
		"grconnect_webhook_outbox_pending 1\n",
		"grconnect_connections_due_unrefreshed 1\n",
		`grconnect_app_health{app="` + f.appID + `",health="ok",name="Acme Templates"} 1`,
		`grconnect_app_health{app="` + f.appID + `",health="credentials_rejected",name="Acme Templates"} 0`,
		`grconnect_build_info{commit="`,
		"# TYPE grconnect_getresponse_request_duration_seconds histogram\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if age := gauge(t, body, "grconnect_webhook_outbox_oldest_age_seconds"); age < 300 || age > 330 {
		t.Errorf("outbox oldest age = %d, want about 300", age)
	}
	// Due since its expiry less the 10 min margin: 70 minutes.
	if lag := gauge(t, body, "grconnect_connections_due_unrefreshed_oldest_seconds"); lag < 4200 || lag > 4230 {
		t.Errorf("backlog age = %d, want about 4200", lag)
	}
	// A paused (unhealthy) app's connections are not the refresher's backlog.
	if err := f.store.DB().Exec("UPDATE apps SET health = 'credentials_rejected' WHERE id = ?", f.appID).Error; err != nil {
		t.Fatal(err)
	}
	f.store.AppsWritten() // a raw write: the app cache must hear of it
	if err := f.built.Metrics.Collect(t.Context()); err != nil {
		t.Fatal(err)
	}
	body = scrape(t, f.testApp)
	mustContain(t, body, "grconnect_connections_due_unrefreshed 0\n",
		`grconnect_app_health{app="`+f.appID+`",health="credentials_rejected",name="Acme Templates"} 1`,
		`grconnect_app_health{app="`+f.appID+`",health="ok",name="Acme Templates"} 0`)
}

// TestMetricsCountNetworkErrors: a call GetResponse never answered is class "error".
func TestMetricsCountNetworkErrors(t *testing.T) {
	f := newAPIFixture(t, getresponsetest.Options{})
	conn := f.connect("customer-1", "")
	f.fake.Close() // GetResponse is gone: the proxy's call gets no answer
	if r := f.call(http.MethodGet, "/api/v1/connections/"+conn.ID+"/proxy/from-fields", nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("proxy without GetResponse = %d", r.status)
	}
	body := scrape(t, f.testApp)
	mustContain(t, body, `grconnect_getresponse_requests_total{class="error",kind="proxy"} 1`, `grconnect_proxy_requests_total{status="503"} 1`)
}

// TestVersionInTheFooter: operators see grconnect's version; customers do not.
func TestVersionInTheFooter(t *testing.T) {
	f := newConnectFixture(t, getresponsetest.Options{})
	mustContain(t, f.op.get("/").body, `data-testid="version"`)
	link := f.makeLink("customer-1", "")
	mustNotContain(t, f.browser().get(strings.TrimPrefix(link, f.srv.URL)).body, `data-testid="version"`)
	mustNotContain(t, f.browser().get("/login").body, `data-testid="version"`)
}

// TestBackupsPage: off, it says how to turn scheduled backups on; on, it shows the
// last backup's time and size, and "Back up now" makes one (recorded in the
// audit log) that the page then lists, apart from the scheduled ones: clicks never
// prune the scheduled history (finding 4 of issue 21: seven clicks deleted the
// seven scheduled backups).
func TestBackupsPage(t *testing.T) {
	modelstest.SkipOnPostgres(t, "backups copy SQLite databases")
	off := newConnectFixture(t, getresponsetest.Options{})
	page := off.op.get("/backups")
	if page.status != http.StatusOK {
		t.Fatalf("/backups = %d", page.status)
	}
	mustContain(t, page.body, `data-testid="backups-off"`, "GRCONNECT_BACKUP_DIR", "grconnect backup --to")
	if r := off.op.submit("/backups", "/backups", nil); r.status != http.StatusSeeOther {
		t.Fatalf("backup now while off = %d", r.status)
	}

	dir := filepath.Join(t.TempDir(), "backups")
	app := newTestApp(t, func(c *config.Config) { c.BackupDir, c.BackupEvery, c.BackupKeep = dir, time.Hour, 2 })
	op := app.setup(annEmail, annPass)
	clock := modelstest.NewClock(time.Now().UTC().Truncate(time.Second))
	app.built.Backups.Now = clock.Now // backups are named to the second
	mustContain(t, op.get("/backups").body, `data-testid="backups-scheduled"`, dir, "none yet")
	// Two scheduled backups, as the schedule makes them.
	for range 2 {
		clock.Advance(time.Hour)
		if _, err := app.built.Backups.RunOnce(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	scheduled, _ := filepath.Glob(filepath.Join(dir, "grconnect-2*.db"))
	for range 7 {
		clock.Advance(time.Minute)
		r := op.submit("/backups", "/backups", nil)
		if r.status != http.StatusSeeOther {
			t.Fatalf("back up now = %d", r.status)
		}
		if page := op.get("/backups"); !strings.Contains(page.body, "Backup grconnect-manual-") {
			t.Fatalf("no flash after backing up:\n%s", page.body)
		}
	}
	page = op.get("/backups")
	if n := strings.Count(page.body, `data-testid="backup-file"`); n != 2 {
		t.Errorf("%d scheduled backups listed, want 2", n)
	}
	if n := strings.Count(page.body, `data-testid="backup-manual-file"`); n != 2 {
		t.Errorf("%d backups by hand listed, want 2 (GRCONNECT_BACKUP_KEEP of their own)", n)
	}
	after, _ := filepath.Glob(filepath.Join(dir, "grconnect-2*.db"))
	if !slices.Equal(after, scheduled) {
		t.Errorf("scheduled backups %v became %v after seven clicks", scheduled, after)
	}
	manual, _ := filepath.Glob(filepath.Join(dir, "grconnect-manual-*.db"))
	if len(manual) != 2 {
		t.Errorf("%d backups by hand in the directory, want 2", len(manual))
	}
	st, err := os.Stat(manual[len(manual)-1])
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, mode %v", err, st.Mode())
	}
	mustContain(t, page.body, `data-testid="backup-size"`, "KiB")
	var n int64
	app.store.DB().Model(&models.AuditEntry{}).Where("action = ? AND actor = ?", models.AuditBackupCreated, annEmail).Count(&n)
	if n != 7 {
		t.Errorf("%d backups by hand in the audit log, want 7", n)
	}
	// The figures are the schedule's: a click cannot hide a failing schedule.
	mustContain(t, scrape(t, app), "grconnect_backups_total{outcome=\"succeeded\"} 2", "grconnect_backup_last_size_bytes ")
}

// TestBackUpNowOnceAMinute: parallel clicks make one backup; the others are told
// why not and when to try again; a minute later another click works.
func TestBackUpNowOnceAMinute(t *testing.T) {
	modelstest.SkipOnPostgres(t, "backups copy SQLite databases")
	dir := filepath.Join(t.TempDir(), "backups")
	app := newTestApp(t, func(c *config.Config) { c.BackupDir, c.BackupEvery, c.BackupKeep = dir, time.Hour, 5 })
	op := app.setup(annEmail, annPass)
	clock := modelstest.NewClock(time.Now().UTC().Truncate(time.Second))
	app.built.Backups.Now = clock.Now
	token := csrfRe.FindStringSubmatch(op.get("/backups").body)[1]
	const clicks = 8
	var wg sync.WaitGroup
	statuses := make([]int, clicks)
	for i := range clicks {
		wg.Go(func() { statuses[i] = op.post("/backups", url.Values{"_csrf": {token}}).status })
	}
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusSeeOther {
			t.Errorf("click %d = %d", i, st)
		}
	}
	made, _ := filepath.Glob(filepath.Join(dir, "grconnect-manual-*.db"))
	if len(made) != 1 {
		t.Fatalf("%d backups from %d parallel clicks, want 1", len(made), clicks)
	}
	clock.Advance(30 * time.Second)
	op.submit("/backups", "/backups", nil)
	page := op.get("/backups").body
	mustContain(t, page, "Not made: a backup was made by hand at", "one a minute")
	if made, _ := filepath.Glob(filepath.Join(dir, "grconnect-manual-*.db")); len(made) != 1 {
		t.Fatalf("a click 30 s later made a backup (%d)", len(made))
	}
	clock.Advance(31 * time.Second)
	op.submit("/backups", "/backups", nil)
	if made, _ := filepath.Glob(filepath.Join(dir, "grconnect-manual-*.db")); len(made) != 2 {
		t.Fatalf("%d backups after a minute, want 2", len(made))
	}
}

// gauge reads an unlabelled series' whole-number value from a scrape.
func gauge(t *testing.T, body, name string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + ` (\d+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

package handlers_test

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// auditFixture is an install whose audit log holds 1,000 entries about an app
// that lives, an app that was deleted, an operator who was removed, a
// connection, an API key and the install itself.
type auditFixture struct {
	*apiFixture
	conn                   *models.Connection
	doomedID, bobID, keyID string
}

func newAuditFixture(t *testing.T) *auditFixture {
	t.Helper()
	f := &auditFixture{apiFixture: newAPIFixture(t, getresponsetest.Options{})}
	f.conn = f.connect("customer-1", "")
	form := appForm("Doomed App")
	f.fake.AddClient("client-abc", clientSecret, f.cfg.RedirectURL())
	f.doomedID = createApp(t, f.op, form)
	f.setupSecondOperator(f.op, "bob@example.com", "bob password 1")
	bob, _ := f.store.OperatorByEmail(t.Context(), "bob@example.com")
	f.bobID = bob.ID
	var key models.APIKey
	f.store.DB().Where("name = ?", "test backend").First(&key)
	f.keyID = key.ID
	targets := []struct {
		action   models.AuditAction
		typ, id  string
		details  string
		actor    string
		deletion bool
	}{
		{models.AuditAppUpdated, "app", f.appID, "App edited: name", annEmail, false},
		{models.AuditAppUpdated, "app", f.doomedID, "App edited: logo", annEmail, false},
		{models.AuditAlertsChanged, "operator", f.bobID, "Alert e-mails turned on", "bob@example.com", false},
		{models.AuditRefreshed, "connection", f.conn.ID, "Refreshed on request", "api:test backend", false},
		{models.AuditAPIKeyCreated, "api_key", f.keyID, "API key made", "cli", false},
		{models.AuditBackupCreated, "install", "", "Backup made", "cli", false},
	}
	base := time.Now().UTC().Add(-10 * 24 * time.Hour)
	for i := range 1000 {
		tg := targets[i%len(targets)]
		e := models.AuditEntry{CreatedAt: base.Add(time.Duration(i) * time.Minute), Actor: tg.actor, IP: "203.0.113.7",
			Action: tg.action, TargetType: tg.typ, TargetID: tg.id, Details: tg.details}
		if err := f.store.RecordAudit(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	// The doomed app is deleted and Bob removed: their entries keep their names.
	if r := f.op.submit("/apps/"+f.doomedID+"/delete", "/apps/"+f.doomedID+"/delete", nil); r.status != http.StatusSeeOther {
		t.Fatalf("delete the app = %d", r.status)
	}
	if r := f.op.submit("/operators/"+f.bobID+"/remove", "/operators/"+f.bobID+"/remove", nil); r.status != http.StatusSeeOther {
		t.Fatalf("remove Bob = %d", r.status)
	}
	return f
}

var (
	auditRowRe = regexp.MustCompile(`(?s)<tr data-testid="audit-entry" data-action="([^"]+)">(.*?)</tr>`)
	nextPageRe = regexp.MustCompile(`<a class="button" href="(/audit\?[^"]+)">Older</a>`)
	tagRe      = regexp.MustCompile(`<[^>]*>`)
)

// TestAuditPageShowsThousandEntriesByName walks the audit page over 1,000
// entries, 50 a screen: every entry names its actor, its action in words and its
// target by name — linked while the target exists, "(deleted)" with no dead link
// once it is gone — and no raw action code is shown. The filter offers actions
// in words, grouped by what they are about.
func TestAuditPageShowsThousandEntriesByName(t *testing.T) {
	t.Parallel()
	f := newAuditFixture(t)
	var total int64
	f.store.DB().Model(&models.AuditEntry{}).Count(&total)
	if total < 1000 {
		t.Fatalf("%d entries", total)
	}
	seen, pages := 0, 0
	counts := map[string]int{}
	start := time.Now()
	for path := "/audit"; path != ""; pages++ {
		r := f.op.get(path)
		if r.status != http.StatusOK {
			t.Fatalf("%s = %d", path, r.status)
		}
		rows := auditRowRe.FindAllStringSubmatch(r.body, -1)
		if len(rows) != 50 && nextPageRe.MatchString(r.body) {
			t.Fatalf("page %d has %d entries, want 50", pages+1, len(rows))
		}
		text := html.UnescapeString(tagRe.ReplaceAllString(r.body, " "))
		for _, a := range []string{"app.updated", "operator.alerts_changed", "connection.refreshed", "api_key.created"} {
			if strings.Contains(text, a) {
				t.Fatalf("page %d shows the raw action code %s", pages+1, a)
			}
		}
		for _, row := range rows {
			seen++
			body := row[2]
			switch {
			case row[1] == "app.updated" && strings.Contains(body, "Doomed App"):
				counts["doomed"]++
				if !strings.Contains(body, "(deleted)") || strings.Contains(body, `href="/apps/`+f.doomedID) {
					t.Fatalf("an entry about the deleted app: %s", body)
				}
			case row[1] == "app.updated" && strings.Contains(body, "Acme Templates"):
				counts["app"]++
				if !strings.Contains(body, `href="/apps/`+f.appID+`"`) || strings.Contains(body, "(deleted)") {
					t.Fatalf("an entry about the live app: %s", body)
				}
			case strings.Contains(body, "Alert e-mails turned on"):
				counts["bob"]++
				if !strings.Contains(body, "bob@example.com") || !strings.Contains(body, "(deleted)") {
					t.Fatalf("an entry about the removed operator: %s", body)
				}
			case row[1] == "connection.refreshed":
				counts["conn"]++
				if !strings.Contains(body, "Refreshed a connection") || !strings.Contains(body, `href="/connections/`+f.conn.ID+`"`) ||
					!strings.Contains(body, getresponsetest.DefaultAccount().Email) || !strings.Contains(body, "API key “test backend”") {
					t.Fatalf("an entry about the connection: %s", body)
				}
			case row[1] == "api_key.created" && strings.Contains(body, "API key made"):
				counts["key"]++
				if !strings.Contains(body, "Command line") || !strings.Contains(body, `href="/api-keys#`+f.keyID+`"`) || !strings.Contains(body, "test backend") {
					t.Fatalf("an entry about the key: %s", body)
				}
			case row[1] == "install.backup_created":
				counts["install"]++
				if !strings.Contains(body, "The install") || !strings.Contains(body, "Made a backup") || !strings.Contains(body, "203.0.113.7") {
					t.Fatalf("an entry about the install: %s", body)
				}
			}
		}
		path = ""
		if m := nextPageRe.FindStringSubmatch(r.body); m != nil {
			path = html.UnescapeString(m[1])
		}
	}
	t.Logf("%d entries on %d pages in %v", seen, pages, time.Since(start).Round(time.Millisecond))
	if seen != int(total) {
		t.Fatalf("the pages showed %d entries of %d", seen, total)
	}
	for _, k := range []string{"doomed", "app", "bob", "conn", "key", "install"} {
		if counts[k] < 166 {
			t.Errorf("%d entries about %s, want at least 166", counts[k], k)
		}
	}
	page := f.op.get("/audit").body
	mustContain(t, page, `<optgroup label="Apps">`, `<option value="app.created">Registered an app</option>`,
		`<option value="invitation.">Anything about invitations</option>`, `<option value="api_key">API keys</option>`)
	// A filter narrows the screen and its export links carry it.
	r := f.op.get("/audit?action=app.&actor=" + url.QueryEscape(annEmail))
	if n := len(auditRowRe.FindAllString(r.body, -1)); n != 50 {
		t.Fatalf("%d filtered rows", n)
	}
	mustContain(t, r.body, `href="/audit/export?action=app.&amp;actor=ann%40example.com&amp;format=csv"`)
}

// TestAuditExportsTheWholeFilteredRange: the page's CSV and JSON-lines exports,
// and GET /api/v1/audit?format=…, stream every entry the filters select (more
// than one batch), newest first, with names; CSV cells that a spreadsheet would
// run are defused; an API key limited to one app exports only that app's entries.
func TestAuditExportsTheWholeFilteredRange(t *testing.T) {
	t.Parallel()
	f := newAuditFixture(t)
	if err := f.store.RecordAudit(t.Context(), models.AuditEntry{Actor: "=HYPERLINK(\"http://evil\")", Action: models.AuditAppUpdated,
		TargetType: "app", TargetID: f.appID, Details: "+1 formula"}); err != nil {
		t.Fatal(err)
	}
	var apps, total int64
	f.store.DB().Model(&models.AuditEntry{}).Where("action LIKE ?", "app.%").Count(&apps)
	f.store.DB().Model(&models.AuditEntry{}).Count(&total)
	// Everything: more than two of the export's batches.
	r := f.op.get("/audit/export?format=csv")
	if rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll(); err != nil || int64(len(rows)-1) != total || total < 1000 {
		t.Fatalf("the whole log's export: %d rows of %d (%v)", len(rows)-1, total, err)
	}

	r = f.op.get("/audit/export?format=csv&action=app.")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(r.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("CSV export = %d %v", r.status, r.header)
	}
	records, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(records[0], ",") != "id,created_at,actor,ip,action,action_label,target_type,target_id,target_name,details" {
		t.Fatalf("header %v", records[0])
	}
	if int64(len(records)-1) != apps || apps < 300 {
		t.Fatalf("%d CSV rows, want all %d app entries", len(records)-1, apps)
	}
	first := records[1]
	if first[2] != `'=HYPERLINK("http://evil")` || first[9] != "'+1 formula" || first[8] != "Acme Templates" || first[5] != "Edited an app" {
		t.Fatalf("newest row %v", first)
	}
	doomed := 0
	for _, rec := range records[1:] {
		if rec[7] == f.doomedID && rec[8] == "Doomed App" {
			doomed++
		}
	}
	if doomed < 166 {
		t.Fatalf("%d rows name the deleted app", doomed)
	}

	// JSON lines from the page, with a date range.
	day := time.Now().UTC().Add(-10 * 24 * time.Hour).Format(time.DateOnly)
	r = f.op.get("/audit/export?format=jsonl&target_type=operator&till=" + day)
	var lines int
	sc := bufio.NewScanner(strings.NewReader(r.body))
	for sc.Scan() {
		var e struct {
			CreatedAt time.Time `json:"created_at"`
			Target    struct{ Type, Name string }
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e.Target.Type != "operator" || e.CreatedAt.After(time.Now().UTC().Add(-8*24*time.Hour)) {
			t.Fatalf("a line outside the filters: %s", sc.Text())
		}
		lines++
	}
	if lines == 0 || lines > 1000/6+1 {
		t.Fatalf("%d JSON lines", lines)
	}

	// The API streams too, with the key's scope; an app-limited key gets its app's entries only.
	r, _ = f.send(http.MethodGet, "/api/v1/audit?format=jsonl&target_type=app", f.key, nil, nil)
	all := strings.Count(r.body, "\n")
	limited := f.newKey(t, "acme audit", f.appID, models.ScopeAuditRead)
	r, _ = f.send(http.MethodGet, "/api/v1/audit?format=jsonl&target_type=app", limited, nil, nil)
	if r.status != http.StatusOK || strings.Contains(r.body, f.doomedID) || strings.Count(r.body, "\n") >= all || !strings.Contains(r.body, f.appID) {
		t.Fatalf("the limited key's export = %d: %d of %d lines", r.status, strings.Count(r.body, "\n"), all)
	}
	wantError(t, mustSend(t, f.apiFixture, http.MethodGet, "/api/v1/audit?format=xml", f.key), http.StatusBadRequest, "invalid_input")
	if r := f.op.get("/audit/export?format=xml"); r.status != http.StatusBadRequest {
		t.Fatalf("an unknown format = %d", r.status)
	}
	// Without a session: the sign-in page, never the log.
	if r := f.browser().get("/audit/export?format=csv"); r.status != http.StatusSeeOther {
		t.Fatalf("an anonymous export = %d", r.status)
	}
}

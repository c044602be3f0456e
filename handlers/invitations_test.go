package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services/infra/config"
	"github.com/grconnect/grconnect/services/infra/mailer/mailertest"
)

// invitationURLRe finds the invitation link a page shows once.
var invitationURLRe = regexp.MustCompile(`id="invitation-url" type="text" readonly value="([^"]+)"`)

// invite has by invite email as role on the operators page and returns the path
// of the invitation link the page shows.
func (a *testApp) invite(by *browser, email string, role models.Role) string {
	a.t.Helper()
	r := by.submit("/operators", "/operators", url.Values{"email": {email}, "role": {string(role)}})
	m := invitationURLRe.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		a.t.Fatalf("invite %s = %d, no link shown\n%s", email, r.status, r.body)
	}
	return strings.TrimPrefix(m[1], a.srv.URL)
}

// accept opens an invitation link in a fresh browser and joins with password;
// it returns that browser, signed in.
func (a *testApp) accept(path, password string) *browser {
	a.t.Helper()
	b := a.browser()
	r := b.submit(path, path, url.Values{"password": {password}, "password_confirm": {password}})
	if r.status != http.StatusSeeOther || r.location() != "/" {
		a.t.Fatalf("accept %s = %d %s\n%s", path, r.status, r.location(), r.body)
	}
	b.password = password
	return b
}

// addOperator invites email as role and accepts the invitation with password;
// it returns the new operator's browser, signed in.
func (a *testApp) addOperator(by *browser, email, password string, role models.Role) *browser {
	a.t.Helper()
	return a.accept(a.invite(by, email, role), password)
}

// TestInvitationWorksOnceAndIsAudited: an admin invites (with their password);
// the link, shown once and stored only as a hash, opens a page where the
// invitee chooses their password and is signed in with the invitation's role; a
// second use, a revoked invitation and one older than 72 hours answer 410. The
// creation, the use and the revocation are in the audit log, by name.
func TestInvitationWorksOnceAndIsAudited(t *testing.T) {
	t.Parallel()
	app := newTestApp(t)
	clock := modelstest.NewClock(time.Now().UTC())
	app.built.Invitations.Now = clock.Now
	ann := app.setup(annEmail, annPass)
	expireReauth(t, app)
	if r := ann.submit("/operators", "/operators", url.Values{"email": {"bob@example.com"}, "role": {"viewer"}, "current_password": {""}}); r.status != http.StatusForbidden {
		t.Fatalf("an invitation without the password = %d", r.status)
	}
	path := app.invite(ann, "bob@example.com", models.RoleViewer)
	token := strings.TrimPrefix(path, "/invite/")
	if len(token) < 40 {
		t.Fatalf("invitation token %q is short", token)
	}
	var stored models.Invitation
	app.store.DB().Where("email = ?", "bob@example.com").First(&stored)
	if stored.TokenHash == "" || strings.Contains(stored.TokenHash, token) || stored.Role != models.RoleViewer || stored.ExpiresAt.Sub(stored.CreatedAt) != 72*time.Hour {
		t.Fatalf("stored invitation: %+v", stored)
	}
	// Listed as pending (never with its link), revocable.
	page := ann.get("/operators").body
	mustContain(t, page, `data-testid="invitation-row"`, "bob@example.com", "/operators/invitations/"+stored.ID+"/revoke")
	mustNotContain(t, page, token)

	// The invitee's page names the address, the role and who invited them.
	bob := app.browser()
	r := bob.get(path)
	mustContain(t, r.body, "bob@example.com", "Viewer", annEmail, `name="password"`)
	if r := bob.submit(path, path, url.Values{"password": {"short"}, "password_confirm": {"short"}}); r.status != http.StatusUnprocessableEntity {
		t.Fatalf("a short password = %d", r.status)
	}
	r = bob.submit(path, path, url.Values{"password": {"bobs own password"}, "password_confirm": {"bobs own password"}})
	if r.status != http.StatusSeeOther || r.location() != "/" {
		t.Fatalf("accept = %d %s", r.status, r.location())
	}
	home := bob.get("/")
	if home.status != http.StatusOK || !strings.Contains(home.body, "You joined as Viewer") {
		t.Fatalf("the invitee is not signed in: %d", home.status)
	}
	bobOp, err := app.store.OperatorByEmail(t.Context(), "bob@example.com")
	if err != nil || bobOp.Role != models.RoleViewer {
		t.Fatalf("the new operator: %+v %v", bobOp, err)
	}
	// Works once: the same link again is gone, and the password Bob chose signs him in.
	other := app.browser()
	csrf := csrfRe.FindStringSubmatch(other.get("/login").body)[1]
	for _, again := range []response{other.get(path), other.post(path, url.Values{"_csrf": {csrf}, "password": {"another password"}, "password_confirm": {"another password"}})} {
		if again.status != http.StatusGone {
			t.Errorf("the used invitation = %d, want 410", again.status)
		}
	}
	app.signIn("bob@example.com", "bobs own password")
	mustNotContain(t, ann.get("/operators").body, `data-testid="invitation-row"`)

	// Revoked, and expired: both gone.
	revoked := app.invite(ann, "carol@example.com", models.RoleAdmin)
	var carol models.Invitation
	app.store.DB().Where("email = ?", "carol@example.com").First(&carol)
	if r := ann.submit("/operators", "/operators/invitations/"+carol.ID+"/revoke", nil); r.status != http.StatusSeeOther {
		t.Fatalf("revoke = %d", r.status)
	}
	if r := app.browser().get(revoked); r.status != http.StatusGone {
		t.Errorf("a revoked invitation = %d", r.status)
	}
	late := app.invite(ann, "dave@example.com", models.RoleAdmin)
	clock.Advance(72*time.Hour + time.Minute)
	if r := app.browser().get(late); r.status != http.StatusGone {
		t.Errorf("an invitation after 72 hours = %d", r.status)
	}
	// A new invitation to an address replaces its open one.
	first := app.invite(ann, "erin@example.com", models.RoleViewer)
	app.invite(ann, "erin@example.com", models.RoleAdmin)
	if r := app.browser().get(first); r.status != http.StatusGone {
		t.Errorf("a replaced invitation = %d", r.status)
	}

	// Audited, with the invitee's name.
	entries := map[models.AuditAction][]models.AuditEntry{}
	for _, e := range auditLog(t, app) {
		entries[e.Action] = append(entries[e.Action], e)
	}
	created, accepted, revokedE := entries[models.AuditInvitationCreated], entries[models.AuditInvitationAccepted], entries[models.AuditInvitationRevoked]
	if len(created) != 5 || created[0].Actor != annEmail || created[0].TargetName != "bob@example.com" || created[0].TargetID != stored.ID {
		t.Errorf("invitation.created entries: %+v", created)
	}
	if len(accepted) != 1 || accepted[0].Actor != "bob@example.com" || accepted[0].TargetID != bobOp.ID || accepted[0].TargetName != "bob@example.com" ||
		!strings.Contains(accepted[0].Details, "Viewer") || accepted[0].IP != "127.0.0.1" {
		t.Errorf("invitation.accepted entries: %+v", accepted)
	}
	if len(revokedE) != 1 || revokedE[0].TargetName != "carol@example.com" {
		t.Errorf("invitation.revoked entries: %+v", revokedE)
	}
	for _, e := range auditLog(t, app) {
		if strings.Contains(e.Details, token) {
			t.Errorf("the audit log holds the invitation's token: %+v", e)
		}
	}
}

// TestInvitationsAreMailedWhenAMailServerIsSet: with GRCONNECT_SMTP_URL the link
// goes to the invitee by e-mail and is not shown on the page; when the mail
// server refuses, the page shows the link to copy and says why.
func TestInvitationsAreMailedWhenAMailServerIsSet(t *testing.T) {
	t.Parallel()
	smtp := mailertest.NewServer()
	t.Cleanup(smtp.Close)
	app := newTestApp(t, func(cfg *config.Config) { cfg.SMTPURL = smtp.URL("", ""); cfg.MailFrom = "grconnect@example.com" })
	ann := app.setup(annEmail, annPass)
	mustContain(t, ann.get("/operators").body, "grconnect e-mails it to them")
	r := ann.submit("/operators", "/operators", url.Values{"email": {"bob@example.com"}, "role": {"admin"}})
	if r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="invitation-mailed"`) || invitationURLRe.MatchString(r.body) {
		t.Fatalf("a mailed invitation's page = %d\n%s", r.status, r.body)
	}
	msgs := smtp.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "bob@example.com" {
		t.Fatalf("messages: %+v", msgs)
	}
	link := regexp.MustCompile(`http://\S+/invite/([a-z0-9]+)`).FindStringSubmatch(msgs[0].Data)
	if link == nil || !strings.Contains(msgs[0].Data, "as Admin") || !strings.Contains(msgs[0].Data, annEmail) {
		t.Fatalf("the e-mail:\n%s", msgs[0].Data)
	}
	app.accept("/invite/"+link[1], "bobs own password")

	// The mail server goes away: the link is shown, with the reason.
	smtp.Close()
	r = ann.submit("/operators", "/operators", url.Values{"email": {"carol@example.com"}, "role": {"viewer"}})
	if r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="invitation-mail-failed"`) || !invitationURLRe.MatchString(r.body) {
		t.Fatalf("an invitation the mail server refused = %d\n%s", r.status, r.body)
	}
}

// TestInvitationUsedTwiceAtOnceMakesOneOperator fires two acceptances of one
// invitation in parallel: one operator is made, the other request is told the
// invitation is gone.
func TestInvitationUsedTwiceAtOnceMakesOneOperator(t *testing.T) {
	t.Parallel()
	app := newTestApp(t)
	ann := app.setup(annEmail, annPass)
	path := app.invite(ann, "bob@example.com", models.RoleViewer)
	statuses := make([]int, 4)
	browsers, forms := make([]*browser, len(statuses)), make([]url.Values, len(statuses))
	for i := range statuses { // every browser opens the page first, then all post at once
		browsers[i] = app.browser()
		forms[i] = url.Values{"password": {fmt.Sprintf("bobs password %d", i)}, "password_confirm": {fmt.Sprintf("bobs password %d", i)},
			"_csrf": {csrfRe.FindStringSubmatch(browsers[i].get(path).body)[1]}}
	}
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() { statuses[i] = browsers[i].post(path, forms[i]).status })
	}
	wg.Wait()
	slices.Sort(statuses)
	if statuses[0] != http.StatusSeeOther || statuses[1] != http.StatusGone || statuses[3] != http.StatusGone {
		t.Fatalf("statuses %v, want one 303 and the rest 410", statuses)
	}
	var n int64
	app.store.DB().Model(&models.Operator{}).Where("email = ?", "bob@example.com").Count(&n)
	if n != 1 {
		t.Fatalf("%d operators made", n)
	}
}

package services

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/infra/mailer"
)

// InvitationTTL is how long an invitation link works: a long weekend.
const InvitationTTL = 72 * time.Hour

// ErrInvitationInvalid is returned for an invitation link that is unknown, used,
// revoked, replaced or expired.
var ErrInvitationInvalid = errors.New("this invitation is not valid: it was used, revoked or replaced, or has expired")

// Invitations lets admins add operators without choosing passwords for them: a
// single-use link, e-mailed when grconnect has a mail server (else shown once to
// copy), with which the invitee chooses their own password and joins with the
// invitation's role.
type Invitations struct {
	store     *models.Store
	operators *Operators
	sender    Sender // nil: no mail server
	from      string
	baseURL   string
	log       *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// NewInvitations returns the invitation service; sender nil means links are only
// shown, never e-mailed.
func NewInvitations(store *models.Store, operators *Operators, sender Sender, from, baseURL string, log *slog.Logger) *Invitations {
	return &Invitations{store: store, operators: operators, sender: sender, from: from, baseURL: baseURL, log: log, Now: models.Now}
}

// MailEnabled reports whether invitations are e-mailed.
func (i *Invitations) MailEnabled() bool { return i.sender != nil }

// URL is where an invitation's token is used.
func (i *Invitations) URL(token string) string { return i.baseURL + "/invite/" + token }

// NewInvitation is a new invitation's link, shown once, and whether it was e-mailed.
type NewInvitation struct {
	Invitation *models.Invitation
	URL        string
	// Mailed says the link was e-mailed to the invitee; MailProblem, when a mail
	// server is set but refused it, says why in words (the link is still good).
	Mailed      bool
	MailProblem string
}

// Create invites email to join as role, on behalf of by. An open invitation to
// the same address is replaced. Problems come back as FieldErrors on "email"
// (also: an operator already has it) and "role". The link is e-mailed when a mail
// server is set; a failure to send is reported, never lost: the link is returned
// to be shown either way.
func (i *Invitations) Create(ctx context.Context, email string, role models.Role, by *models.Operator) (*NewInvitation, error) {
	fe := FieldErrors{}
	addr, problem := ValidateEmail(email)
	if problem != "" {
		fe.Add("email", problem)
	}
	if !role.Known() {
		fe.Add("role", "Choose admin or viewer.")
	}
	if err := fe.OrNil(); err != nil {
		return nil, err
	}
	token := models.RandomToken(32) // 256 bits
	now := i.Now()
	inv := &models.Invitation{ID: models.NewID("inv"), Email: addr, Role: role, TokenHash: hashToken(token),
		CreatedBy: by.Email, CreatedByID: by.ID, ExpiresAt: now.Add(InvitationTTL), CreatedAt: now}
	ctx = auditingNamed(ctx, models.AuditInvitationCreated, TargetInvitation, inv.ID, addr,
		"Invited "+addr+" to join as "+role.Label()+", valid until "+inv.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC")+"; an open invitation to the address is replaced")
	err := i.store.CreateInvitation(ctx, inv)
	if errors.Is(err, models.ErrDuplicate) {
		return nil, FieldErrors{"email": "An operator with this email already exists."}
	}
	if err != nil {
		return nil, err
	}
	out := &NewInvitation{Invitation: inv, URL: i.URL(token)}
	if i.sender != nil {
		if err := i.sender.Send(ctx, i.mail(inv, out.URL, by)); err != nil {
			i.log.Warn("could not e-mail an invitation; it is shown to copy instead", "invitation", inv.ID, "error", err)
			out.MailProblem = "the mail server refused it"
		} else {
			out.Mailed = true
		}
	}
	return out, nil
}

func (i *Invitations) mail(inv *models.Invitation, url string, by *models.Operator) mailer.Message {
	body := by.Email + " invites you to grconnect, the dashboard that keeps your company's GetResponse connections alive, as " +
		inv.Role.Label() + ": you will " + inv.Role.YouCan() + ".\n\n" +
		"Choose your password here to join:\n\n" + url + "\n\n" +
		"The link works once, until " + inv.ExpiresAt.UTC().Format("Monday 2 January 2006, 15:04 UTC") + ".\n" +
		"If you did not expect it, ignore this e-mail: without the link nobody joins in your name.\n"
	return mailer.Message{From: i.from, To: []string{inv.Email}, Subject: "Your invitation to grconnect", Body: body}
}

// Pending returns the invitations that can still be used, newest first.
func (i *Invitations) Pending(ctx context.Context) ([]models.Invitation, error) {
	return i.store.PendingInvitations(ctx, i.Now())
}

// Revoke withdraws an open invitation; one used, revoked or unknown is models.ErrNotFound.
func (i *Invitations) Revoke(ctx context.Context, id, by string) (*models.Invitation, error) {
	inv, err := i.store.InvitationByID(ctx, id)
	if err != nil {
		return nil, err
	}
	ctx = auditingNamed(ctx, models.AuditInvitationRevoked, TargetInvitation, inv.ID, inv.Email,
		"Invitation of "+inv.Email+" as "+inv.Role.Label()+" revoked")
	return inv, i.store.RevokeInvitation(ctx, id, by, i.Now())
}

// Open returns the invitation a still-valid link is for, or ErrInvitationInvalid.
func (i *Invitations) Open(ctx context.Context, token string) (*models.Invitation, error) {
	if token == "" || len(token) > 100 {
		return nil, ErrInvitationInvalid
	}
	inv, err := i.store.OpenInvitationByHash(ctx, hashToken(token), i.Now())
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrInvitationInvalid
	}
	return inv, err
}

// Accept uses an invitation: the invitee's password is checked and the operator
// created with the invitation's address and role, in one transaction with the
// use and its audit entry (the invitee acts, from ctx's address). Password
// problems come back as FieldErrors on "password" and "password_confirm"; a link
// that no longer works (also: used by a concurrent request first) as
// ErrInvitationInvalid; an address that became an operator's meanwhile as
// FieldErrors on "email".
func (i *Invitations) Accept(ctx context.Context, token, password, confirm string) (*models.Operator, error) {
	inv, err := i.Open(ctx, token)
	if err != nil {
		return nil, err
	}
	hash, err := i.operators.passwordHash(FieldErrors{}, password, confirm)
	if err != nil {
		return nil, err
	}
	op := &models.Operator{ID: models.NewID("op"), PasswordHash: hash}
	if a, ok := ActorOf(ctx); ok {
		ctx = WithActor(ctx, Actor{Name: inv.Email, IP: a.IP})
	}
	ctx = auditingNamed(ctx, models.AuditInvitationAccepted, TargetOperator, op.ID, inv.Email,
		"Invitation "+inv.ID+" accepted: "+inv.Email+" joined as "+inv.Role.Label()+", invited by "+inv.CreatedBy)
	_, err = i.store.AcceptInvitation(ctx, hashToken(token), op, i.Now())
	switch {
	case errors.Is(err, models.ErrNotFound):
		return nil, ErrInvitationInvalid
	case errors.Is(err, models.ErrDuplicate):
		return nil, FieldErrors{"email": "An operator with this email already exists: sign in instead."}
	case err != nil:
		return nil, err
	}
	return op, nil
}

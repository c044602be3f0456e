package services

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// Sign-in throttling. Every attempt is reserved before its password is checked,
// per client address (ipAttemptLimit) and per account (accountAttemptLimit); a
// success gives its reservation back. The per-account count is kept per browser: a
// browser that signed in to the account before (it holds a known-browser cookie)
// has a count of its own, so strangers who exhaust the account's count for new
// browsers never lock its operator out of their usual browser.
const (
	ipAttemptLimit      = 10
	accountAttemptLimit = 5
	attemptWindow       = 15 * time.Minute
	minPasswordLength   = 10
	maxPasswordBytes    = 72  // bcrypt's limit
	maxEmailBytes       = 254 // RFC 5321's path limit
)

// ErrInvalidCredentials is returned for a wrong email or password (never saying which).
var ErrInvalidCredentials = errors.New("invalid email or password")

// ErrSetupDone is returned by Setup once an operator exists.
var ErrSetupDone = errors.New("setup is already complete")

// ErrCannotRemoveSelf is returned when an operator tries to remove themself.
var ErrCannotRemoveSelf = errors.New("you cannot remove yourself")

// ThrottledError is returned while sign-ins are refused after too many attempts.
type ThrottledError struct {
	RetryAfter time.Duration
	// NewBrowsers is set when only browsers that never signed in to the account
	// are refused.
	NewBrowsers bool
}

func (e *ThrottledError) Error() string {
	mins := int(e.RetryAfter.Round(time.Minute) / time.Minute)
	if mins < 1 {
		mins = 1
	}
	msg := fmt.Sprintf("Too many failed sign-ins. Try again in %d minute%s", mins, map[bool]string{true: "", false: "s"}[mins == 1])
	if e.NewBrowsers {
		return msg + ", or sign in from a browser you used before."
	}
	return msg + "."
}

// Operators manages the people who sign in to the dashboard.
type Operators struct {
	store *models.Store
	box   *secrets.Box
	// Cost is the bcrypt cost; tests lower it.
	Cost int
	// dummyHash is compared against when the email is unknown, so that a wrong
	// email takes as long as a wrong password.
	dummyOnce sync.Once
	dummyHash []byte
}

// NewOperators returns the operator service. box keys the known-browser cookies
// and the setup token.
func NewOperators(store *models.Store, box *secrets.Box) *Operators {
	return &Operators{store: store, box: box, Cost: bcrypt.DefaultCost}
}

// NeedsSetup reports whether no operator exists yet (the /setup page is open).
func (o *Operators) NeedsSetup(ctx context.Context) (bool, error) {
	n, err := o.store.CountOperators(ctx)
	return n == 0, err
}

// ErrSetupToken is returned by Setup without the install's setup token.
var ErrSetupToken = errors.New("the setup link's token is missing or wrong")

// SetupToken is the token that opens /setup on a fresh install: whoever can read
// grconnect's log (it prints the setup URL at start) creates the first operator,
// not whoever reaches the page first. It is derived from the secret key, so every
// replica and every restart prints the same one until the first operator exists;
// after that it opens nothing.
func (o *Operators) SetupToken() string {
	return base64.RawURLEncoding.EncodeToString(o.box.Derive("setup-token")[:24])
}

// ValidSetupToken reports whether token is the install's setup token.
func (o *Operators) ValidSetupToken(token string) bool {
	return hmac.Equal([]byte(token), []byte(o.SetupToken()))
}

// Setup creates the first operator, given the setup token; afterwards it returns
// ErrSetupDone. (grconnect operator create needs no token: it runs on the server.)
func (o *Operators) Setup(ctx context.Context, token, email, password, confirm string) (*models.Operator, error) {
	if !o.ValidSetupToken(token) {
		return nil, ErrSetupToken
	}
	op, err := o.newOperator(email, password, confirm)
	if err != nil {
		return nil, err
	}
	// The first operator acts for themself.
	if a, ok := ActorOf(ctx); ok {
		ctx = WithActor(ctx, Actor{Name: op.Email, IP: a.IP})
	}
	op.ID = models.NewID("op")
	ctx = auditingNamed(ctx, models.AuditOperatorCreated, TargetOperator, op.ID, op.Email, "First operator "+op.Email+" (Admin) created through the setup page")
	if err := o.store.CreateFirstOperator(ctx, op); errors.Is(err, models.ErrDuplicate) {
		return nil, ErrSetupDone
	} else if err != nil {
		return nil, err
	}
	return op, nil
}

// Create adds an operator with a password chosen for them (the command line; the
// dashboard invites instead, see Invitations) and a role ("" is admin). Problems
// come back as FieldErrors on "email", "password" and "role".
func (o *Operators) Create(ctx context.Context, email, password, confirm string, role models.Role) (*models.Operator, error) {
	if role == "" {
		role = models.RoleAdmin
	}
	if !role.Known() {
		return nil, FieldErrors{"role": "Choose admin or viewer."}
	}
	op, err := o.newOperator(email, password, confirm)
	if err != nil {
		return nil, err
	}
	op.ID, op.Role = models.NewID("op"), role
	ctx = auditingNamed(ctx, models.AuditOperatorCreated, TargetOperator, op.ID, op.Email, "Operator "+op.Email+" added as "+role.Label())
	if err := o.store.CreateOperator(ctx, op); errors.Is(err, models.ErrDuplicate) {
		return nil, FieldErrors{"email": "An operator with this email already exists."}
	} else if err != nil {
		return nil, err
	}
	return op, nil
}

func (o *Operators) newOperator(email, password, confirm string) (*models.Operator, error) {
	fe := FieldErrors{}
	addr, problem := ValidateEmail(email)
	if problem != "" {
		fe.Add("email", problem)
	}
	hash, err := o.passwordHash(fe, password, confirm)
	if err != nil {
		return nil, err
	}
	return &models.Operator{Email: addr, PasswordHash: hash}, nil
}

// passwordHash checks a new password and its confirmation (adding to fe) and
// returns its bcrypt hash; fe's problems, if any, are the error.
func (o *Operators) passwordHash(fe FieldErrors, password, confirm string) (string, error) {
	checkPassword(fe, "password", password, confirm)
	if err := fe.OrNil(); err != nil {
		return "", err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), o.Cost)
	return string(hash), err
}

// ValidateEmail checks that s is one plain email address and returns it
// normalized, or what is wrong with it in words for the form.
func ValidateEmail(s string) (addr, problem string) {
	s = models.NormalizeEmail(s)
	if s == "" {
		return "", "Enter an email address."
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 || hasUnprintable(s) {
		return "", "Enter a valid email address, like ann@example.com."
	}
	return s, ""
}

func checkPassword(fe FieldErrors, field, password, confirm string) {
	switch {
	case utf8.RuneCountInString(password) < minPasswordLength:
		fe.Add(field, fmt.Sprintf("Use at least %d characters.", minPasswordLength))
	case len(password) > maxPasswordBytes:
		fe.Add(field, fmt.Sprintf("Use at most %d bytes.", maxPasswordBytes))
	case password != confirm:
		fe.Add(field+"_confirm", "The two passwords differ.")
	}
}

// SignIn is one sign-in attempt.
type SignIn struct {
	Email, Password string
	IP              string // the client's address (see GRCONNECT_TRUSTED_PROXIES)
	// KnownBrowser is the browser's known-browser cookie, if it has one.
	KnownBrowser string
}

// Authenticate checks an email and password. The attempt is reserved first, per
// address and per account (see accountAttemptLimit); past a limit it returns
// *ThrottledError without checking the password. On success it also returns the
// known-browser cookie value to keep in this browser.
func (o *Operators) Authenticate(ctx context.Context, in SignIn) (*models.Operator, string, error) {
	ipKey := "ip:" + throttleAddress(in.IP)
	if err := o.reserve(ctx, ipKey, ipAttemptLimit, false); err != nil {
		return nil, "", err
	}
	email := models.NormalizeEmail(in.Email)
	if email == "" || len(email) > maxEmailBytes || len(in.Password) > 1024 {
		// Never a key of its own: a long made-up address must not grow the table.
		o.compare(nil, in.Password)
		return nil, "", ErrInvalidCredentials
	}
	op, err := o.store.OperatorByEmail(ctx, email)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return nil, "", err
	}
	accountKey, newBrowser := "email:"+email, true
	if op != nil {
		if id, ok := o.knownBrowser(in.KnownBrowser, op.ID); ok {
			accountKey, newBrowser = "browser:"+id, false
		}
	}
	// The same answer whether or not the address is an operator's: no enumeration.
	if err := o.reserve(ctx, accountKey, accountAttemptLimit, newBrowser); err != nil {
		return nil, "", err
	}
	if op == nil {
		o.compare(nil, in.Password) // as slow as a wrong password
		// The address typed is not recorded: it may be a password typed in the wrong field.
		o.recordFailure(ctx, in.IP, "", "Sign-in failed: no operator has the e-mail address given")
		return nil, "", ErrInvalidCredentials
	}
	if !o.compare([]byte(op.PasswordHash), in.Password) {
		o.recordFailure(ctx, in.IP, op.ID, "Sign-in failed: wrong password for "+op.Email)
		return nil, "", ErrInvalidCredentials
	}
	if err := o.store.ClearLoginFailures(ctx, accountKey); err != nil {
		return nil, "", err
	}
	if err := o.store.RefundLoginAttempt(ctx, ipKey); err != nil {
		return nil, "", err
	}
	cookie := in.KnownBrowser
	details := "Signed in"
	if _, ok := o.knownBrowser(cookie, op.ID); !ok {
		cookie = o.newKnownBrowser(op.ID)
		details = "Signed in from a browser not used for this account before"
	}
	ctx = auditing(WithActor(ctx, Actor{Name: op.Email, IP: in.IP}), models.AuditSignedIn, TargetOperator, op.ID, details)
	if err := o.store.TouchOperatorLogin(ctx, op.ID); err != nil {
		return nil, "", err
	}
	return op, cookie, nil
}

// recordFailure records a failed sign-in (best effort: the attempt is refused
// whether or not the audit log takes it). Throttled attempts are not recorded:
// they never reach the password check, and a flood of them would flood the log.
func (o *Operators) recordFailure(ctx context.Context, ip, operatorID, details string) {
	ctx = WithActor(ctx, Actor{Name: AnonymousActor, IP: ip})
	_ = RecordAudit(ctx, o.store, models.AuditSignInFailed, TargetOperator, operatorID, details)
}

// reserve counts an attempt for key and refuses it past limit.
func (o *Operators) reserve(ctx context.Context, key string, limit int, newBrowsers bool) error {
	n, until, err := o.store.ReserveLoginAttempt(ctx, key, attemptWindow)
	if err != nil {
		return err
	}
	if n > limit {
		return &ThrottledError{RetryAfter: time.Until(until), NewBrowsers: newBrowsers}
	}
	return nil
}

// compare reports whether password matches hash; a nil hash compares against a
// dummy, so that an unknown email takes as long as a wrong password.
func (o *Operators) compare(hash []byte, password string) bool {
	if hash == nil {
		bcrypt.CompareHashAndPassword(o.dummy(), []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
}

// throttleAddress is the part of a client address that is throttled: the address,
// or for IPv6 its /64 (one subscriber's prefix, which holds 2^64 addresses).
func throttleAddress(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return clip(ip, 64)
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// knownBrowser returns the ID of a known-browser cookie issued to operator opID
// ("<op>.<id>.<mac>", keyed by a subkey of the secret key, so it cannot be forged
// or moved to another operator). Cookies keyed before a key rotation still verify
// while the previous key is configured.
func (o *Operators) knownBrowser(cookie, opID string) (string, bool) {
	parts := strings.Split(cookie, ".")
	if o.box == nil || len(parts) != 3 || parts[0] != opID || len(parts[1]) < 16 || len(parts[1]) > 64 {
		return "", false
	}
	for _, key := range o.box.DeriveAll("known-browser") {
		if hmac.Equal([]byte(parts[2]), []byte(knownBrowserMAC(key, opID, parts[1]))) {
			return parts[1], true
		}
	}
	return "", false
}

func (o *Operators) newKnownBrowser(opID string) string {
	if o.box == nil {
		return ""
	}
	id := models.RandomToken(16)
	return opID + "." + id + "." + knownBrowserMAC(o.box.Derive("known-browser"), opID, id)
}

func knownBrowserMAC(key []byte, opID, id string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(opID + "." + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (o *Operators) dummy() []byte {
	o.dummyOnce.Do(func() {
		o.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("grconnect-dummy-password"), o.Cost)
	})
	return o.dummyHash
}

// PasswordChange is an operator's request to change their password.
type PasswordChange struct {
	OperatorID string
	// KeepSessionID is the session that asks: the operator's other sessions end.
	KeepSessionID              string
	Current, Password, Confirm string
	IP                         string
}

// ChangePassword replaces an operator's password after checking the current one,
// and ends their other sessions. The current-password check is throttled like a
// sign-in (per address and per operator): a stolen session cannot guess it.
func (o *Operators) ChangePassword(ctx context.Context, in PasswordChange) error {
	op, err := o.store.OperatorByID(ctx, in.OperatorID)
	if err != nil {
		return err
	}
	ipKey, opKey := "ip:"+throttleAddress(in.IP), "password:"+op.ID
	if err := o.reserve(ctx, ipKey, ipAttemptLimit, false); err != nil {
		return err
	}
	if err := o.reserve(ctx, opKey, accountAttemptLimit, false); err != nil {
		return err
	}
	fe := FieldErrors{}
	if !o.compare([]byte(op.PasswordHash), in.Current) {
		fe.Add("current", "This is not your current password.")
		checkPassword(fe, "password", in.Password, in.Confirm)
		return fe
	}
	// The current password was right: the attempt does not count.
	if err := o.store.ClearLoginFailures(ctx, opKey); err != nil {
		return err
	}
	if err := o.store.RefundLoginAttempt(ctx, ipKey); err != nil {
		return err
	}
	checkPassword(fe, "password", in.Password, in.Confirm)
	if err := fe.OrNil(); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(in.Password), o.Cost)
	if err != nil {
		return err
	}
	ctx = auditing(ctx, models.AuditPasswordChanged, TargetOperator, op.ID, "Password of "+op.Email+" changed; their other sessions ended")
	return o.store.SetOperatorPassword(ctx, op.ID, string(hash), in.KeepSessionID)
}

// Remove deletes operator id on behalf of actorID: never yourself, never the last.
func (o *Operators) Remove(ctx context.Context, actorID, id string) error {
	if actorID == id {
		return ErrCannotRemoveSelf
	}
	op, err := o.store.OperatorByID(ctx, id)
	if err != nil {
		return err
	}
	ctx = auditingNamed(ctx, models.AuditOperatorRemoved, TargetOperator, id, op.Email, "Operator "+op.Email+" ("+op.Role.Label()+") removed; their sessions ended")
	return o.store.DeleteOperator(ctx, id)
}

// ErrCannotChangeOwnRole is returned when an admin asks to change their own role:
// another admin does it (so nobody demotes themself by mistake).
var ErrCannotChangeOwnRole = errors.New("you cannot change your own role")

// SetRole gives operator id the role on behalf of actorID: never their own, never
// leaving no admin (models.ErrLastAdmin). Their outstanding password reset links
// are retired, and an admin made a viewer loses the invitations they made, in the
// same transaction as the change and its audit entry. Setting the role they have
// changes nothing and reports false.
func (o *Operators) SetRole(ctx context.Context, actorID, id string, role models.Role) (bool, error) {
	if !role.Known() {
		return false, FieldErrors{"role": "Choose admin or viewer."}
	}
	if actorID == id {
		return false, ErrCannotChangeOwnRole
	}
	op, err := o.store.OperatorByID(ctx, id)
	if err != nil {
		return false, err
	}
	ctx = auditingNamed(ctx, models.AuditRoleChanged, TargetOperator, id, op.Email,
		"Role of "+op.Email+" changed from "+op.Role.Label()+" to "+role.Label()+"; their outstanding password reset links retired")
	return o.store.SetOperatorRole(ctx, id, role)
}

// List returns every operator.
func (o *Operators) List(ctx context.Context) ([]models.Operator, error) {
	return o.store.ListOperators(ctx)
}

// Get returns one operator, or models.ErrNotFound.
func (o *Operators) Get(ctx context.Context, id string) (*models.Operator, error) {
	op, err := o.store.OperatorByID(ctx, id)
	return op, err
}

// SetAlertEmail turns an operator's alert e-mails on or off.
func (o *Operators) SetAlertEmail(ctx context.Context, id string, on bool) error {
	details := "Alert e-mails turned off"
	if on {
		details = "Alert e-mails turned on"
	}
	ctx = auditing(ctx, models.AuditAlertsChanged, TargetOperator, id, details)
	return o.store.SetAlertEmail(ctx, id, on)
}

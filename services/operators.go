package services

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/grconnect/grconnect/models"
)

// Sign-in throttling: this many failures per address or per email within the window
// block further attempts until the window ends.
const (
	loginFailureLimit  = 5
	loginFailureWindow = 15 * time.Minute
	minPasswordLength  = 10
	maxPasswordBytes   = 72 // bcrypt's limit
)

// ErrInvalidCredentials is returned for a wrong email or password (never saying which).
var ErrInvalidCredentials = errors.New("invalid email or password")

// ErrSetupDone is returned by Setup once an operator exists.
var ErrSetupDone = errors.New("setup is already complete")

// ErrCannotRemoveSelf is returned when an operator tries to remove themself.
var ErrCannotRemoveSelf = errors.New("you cannot remove yourself")

// ThrottledError is returned while sign-ins are blocked after too many failures.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	mins := int(e.RetryAfter.Round(time.Minute) / time.Minute)
	if mins < 1 {
		mins = 1
	}
	return fmt.Sprintf("Too many failed sign-ins. Try again in %d minute%s.", mins, map[bool]string{true: "", false: "s"}[mins == 1])
}

// Operators manages the people who sign in to the dashboard.
type Operators struct {
	store *models.Store
	// Cost is the bcrypt cost; tests lower it.
	Cost int
	// dummyHash is compared against when the email is unknown, so that a wrong
	// email takes as long as a wrong password.
	dummyOnce sync.Once
	dummyHash []byte
}

// NewOperators returns the operator service.
func NewOperators(store *models.Store) *Operators {
	return &Operators{store: store, Cost: bcrypt.DefaultCost}
}

// NeedsSetup reports whether no operator exists yet (the /setup page is open).
func (o *Operators) NeedsSetup(ctx context.Context) (bool, error) {
	n, err := o.store.CountOperators(ctx)
	return n == 0, err
}

// Setup creates the first operator; afterwards it returns ErrSetupDone.
func (o *Operators) Setup(ctx context.Context, email, password, confirm string) (*models.Operator, error) {
	op, err := o.newOperator(email, password, confirm)
	if err != nil {
		return nil, err
	}
	if err := o.store.CreateFirstOperator(ctx, op); errors.Is(err, models.ErrDuplicate) {
		return nil, ErrSetupDone
	} else if err != nil {
		return nil, err
	}
	return op, nil
}

// Create adds an operator. Problems come back as FieldErrors on "email" and "password".
func (o *Operators) Create(ctx context.Context, email, password, confirm string) (*models.Operator, error) {
	op, err := o.newOperator(email, password, confirm)
	if err != nil {
		return nil, err
	}
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
	checkPassword(fe, "password", password, confirm)
	if err := fe.OrNil(); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), o.Cost)
	if err != nil {
		return nil, err
	}
	return &models.Operator{Email: addr, PasswordHash: string(hash)}, nil
}

// ValidateEmail checks that s is one plain email address and returns it
// normalized, or what is wrong with it in words for the form.
func ValidateEmail(s string) (addr, problem string) {
	s = models.NormalizeEmail(s)
	if s == "" {
		return "", "Enter an email address."
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 {
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

// Authenticate checks an email and password from address ip. Failures are counted
// per address and per email; past the limit it returns *ThrottledError without
// checking the password.
func (o *Operators) Authenticate(ctx context.Context, email, password, ip string) (*models.Operator, error) {
	email = models.NormalizeEmail(email)
	keys := []string{"ip:" + ip, "email:" + email}
	until, err := o.store.LoginBlockedUntil(ctx, keys, loginFailureLimit, loginFailureWindow)
	if err != nil {
		return nil, err
	}
	if !until.IsZero() {
		return nil, &ThrottledError{RetryAfter: time.Until(until)}
	}
	op, err := o.store.OperatorByEmail(ctx, email)
	if err != nil && !errors.Is(err, models.ErrNotFound) {
		return nil, err
	}
	hash := o.dummy()
	if err == nil {
		hash = []byte(op.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || err != nil {
		for _, k := range keys {
			if err := o.store.RecordLoginFailure(ctx, k, loginFailureWindow); err != nil {
				return nil, err
			}
		}
		return nil, ErrInvalidCredentials
	}
	if err := o.store.ClearLoginFailures(ctx, "email:"+email); err != nil {
		return nil, err
	}
	if err := o.store.TouchOperatorLogin(ctx, op.ID); err != nil {
		return nil, err
	}
	return op, nil
}

func (o *Operators) dummy() []byte {
	o.dummyOnce.Do(func() {
		o.dummyHash, _ = bcrypt.GenerateFromPassword([]byte("grconnect-dummy-password"), o.Cost)
	})
	return o.dummyHash
}

// ChangePassword replaces an operator's password after checking the current one.
// It returns the new session epoch: every other session of the operator ends.
func (o *Operators) ChangePassword(ctx context.Context, id, current, password, confirm string) (int, error) {
	op, err := o.store.OperatorByID(ctx, id)
	if err != nil {
		return 0, err
	}
	fe := FieldErrors{}
	if bcrypt.CompareHashAndPassword([]byte(op.PasswordHash), []byte(current)) != nil {
		fe.Add("current", "This is not your current password.")
	}
	checkPassword(fe, "password", password, confirm)
	if err := fe.OrNil(); err != nil {
		return 0, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), o.Cost)
	if err != nil {
		return 0, err
	}
	return o.store.SetOperatorPassword(ctx, id, string(hash))
}

// Remove deletes operator id on behalf of actorID: never yourself, never the last.
func (o *Operators) Remove(ctx context.Context, actorID, id string) error {
	if actorID == id {
		return ErrCannotRemoveSelf
	}
	err := o.store.DeleteOperator(ctx, id)
	return err
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
	return o.store.SetAlertEmail(ctx, id, on)
}

package services

import (
	"context"
	"errors"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// keyCheckName is the install secret that proves which key an install uses: a
// known value sealed at first start (and re-sealed by grconnect rekey).
const (
	keyCheckName  = "key_check"
	keyCheckValue = "grconnect key check"
)

// ErrWrongKey is returned by CheckKey when no key of the box opens what the
// database holds.
var ErrWrongKey = errors.New("the secret key opens nothing stored in this database")

// CheckKey makes sure box opens what the database holds: the key check value when
// there is one, else any sealed value (an install from before the check), and
// stores the check value on first start. A wrong key stops grconnect at start
// instead of failing every token later.
func CheckKey(ctx context.Context, store *models.Store, box *secrets.Box) error {
	aad := secrets.AAD("install", keyCheckName, "value")
	sealed, err := store.InstallSecret(ctx, keyCheckName)
	switch {
	case err == nil:
		if v, err := box.Open(sealed, aad); err != nil || v != keyCheckValue {
			return ErrWrongKey
		}
		return nil
	case !errors.Is(err, models.ErrNotFound):
		return err
	}
	sample, sampleAAD, err := store.AnySealedValue(ctx)
	switch {
	case err == nil:
		if _, err := box.Open(sample, sampleAAD); err != nil {
			return ErrWrongKey
		}
	case !errors.Is(err, models.ErrNotFound):
		return err
	}
	check, err := box.Seal(keyCheckValue, aad)
	if err != nil {
		return err
	}
	if err := store.AddInstallSecret(ctx, keyCheckName, check); errors.Is(err, models.ErrDuplicate) {
		return CheckKey(ctx, store, box) // another process stored its check first: it must open too
	} else if err != nil {
		return err
	}
	return nil
}

// HoldsSealedData reports whether the database holds anything sealed with a key
// (the key check, a client secret, a token…): then a missing key file must never
// be replaced by a new key.
func HoldsSealedData(ctx context.Context, store *models.Store) (bool, error) {
	if _, err := store.InstallSecret(ctx, keyCheckName); err == nil {
		return true, nil
	} else if !errors.Is(err, models.ErrNotFound) {
		return false, err
	}
	_, _, err := store.AnySealedValue(ctx)
	if errors.Is(err, models.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// KeyProbe tells, writing nothing, whether box opens what the database holds (the
// key check value, else any sealed value): keyID is the key that value was sealed
// with, "" when nothing sealed is stored. Restore asks it of a backup.
func KeyProbe(ctx context.Context, store *models.Store, box *secrets.Box) (keyID string, opens bool, err error) {
	aad := secrets.AAD("install", keyCheckName, "value")
	sealed, err := store.InstallSecret(ctx, keyCheckName)
	if errors.Is(err, models.ErrNotFound) {
		sealed, aad, err = store.AnySealedValue(ctx)
	}
	if errors.Is(err, models.ErrNotFound) {
		return "", true, nil
	}
	if err != nil {
		return "", false, err
	}
	_, oerr := box.Open(sealed, aad)
	return secrets.SealedKeyID(sealed), oerr == nil, nil
}

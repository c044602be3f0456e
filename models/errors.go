package models

import (
	"errors"
	"fmt"
)

// The errors of the store, which are also the domain's: services and handlers
// match them with errors.Is and never translate them into sentinels of their own.
var (
	// ErrNotFound is returned when a looked-up record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrDuplicate is returned when a unique value (an email, a name) is already taken.
	ErrDuplicate = errors.New("already exists")
	// ErrInUse is returned when deleting an app that connections still use.
	ErrInUse = errors.New("still used by connections")
	// ErrAlreadyUsed is returned when a single-use record was used before.
	ErrAlreadyUsed = errors.New("already used")
	// ErrLastOperator is returned when removing the only operator.
	ErrLastOperator = errors.New("the last operator cannot be removed")
	// ErrDisconnected is returned when acting on a disconnected connection's tokens.
	ErrDisconnected = errors.New("the connection is disconnected")
	// ErrAccountMismatch is returned when a reconnect signs in to another account.
	ErrAccountMismatch = errors.New("signed in to a different GetResponse account than the one being reconnected")
	// ErrLeaseLost is returned when a refresh's lease was taken over before it could commit.
	ErrLeaseLost = errors.New("refresh lease lost")
	// ErrDeliveryLeaseLost is returned when another worker took a webhook delivery over.
	ErrDeliveryLeaseLost = errors.New("webhook delivery lease lost")
	// ErrTooMany is returned when a bounded set (a link's pending authorizations) is full.
	ErrTooMany = errors.New("too many pending")
	// ErrBadCursor is returned for a page cursor this package did not make.
	ErrBadCursor = errors.New("invalid page cursor")
	// ErrTargetNotEmpty is returned by CopyTo when the target database already holds tables.
	ErrTargetNotEmpty = errors.New("the target database is not empty: copy-db only fills a new, empty PostgreSQL database")
)

// SchemaTooNewError is returned when the database was migrated by a newer grconnect.
type SchemaTooNewError struct{ Database, Binary int }

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this grconnect understands (%d): upgrade grconnect", e.Database, e.Binary)
}

// storeError wraps a failed storage operation with what it was doing, so that a
// 500's log line says what failed: "store: unable to lease connection con_…: …".
// Sentinels (ErrNotFound, …) still match through it with errors.Is.
func storeError(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: unable to "+format+": %w", append(args, err)...)
}

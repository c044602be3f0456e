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
	// ErrRevoked is returned when using a connect link an operator withdrew.
	ErrRevoked = errors.New("revoked")
	// ErrTransferRefused is returned when a flow for one customer authorized an
	// account already connected for another, and its link does not allow_transfer.
	ErrTransferRefused = errors.New("the GetResponse account is already connected for another customer")
	// ErrLastOperator is returned when removing the only operator.
	ErrLastOperator = errors.New("the last operator cannot be removed")
	// ErrLastAdmin is returned when removing or demoting the only admin.
	ErrLastAdmin = errors.New("the last admin cannot be removed or made a viewer")
	// ErrDisconnected is returned when acting on a disconnected connection's tokens.
	ErrDisconnected = errors.New("the connection is disconnected")
	// ErrAccountMismatch is returned when a reconnect signs in to another account.
	ErrAccountMismatch = errors.New("signed in to a different GetResponse account than the one being reconnected")
	// ErrSuperseded is returned for a refresh outcome that was not written because a
	// newer token pair had been stored meanwhile.
	ErrSuperseded = errors.New("a newer token pair was stored meanwhile")
	// ErrLeaseLost is returned when another worker took over rows leased to this one
	// (its lease had expired): that worker records them.
	ErrLeaseLost = errors.New("the lease was taken over by another worker")
	// ErrDeliveryPending is returned for a replay of a delivery still being sent.
	ErrDeliveryPending = errors.New("the webhook delivery is still pending")
	// ErrWebhookOff is returned for a replay when the app has no webhook URL.
	ErrWebhookOff = errors.New("the app has no webhook URL")
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
	return &opError{op: fmt.Sprintf(format, args...), err: err, storage: classifyStorage(err)}
}

// opError is a failed store operation.
type opError struct {
	op      string
	err     error
	storage StorageProblem
}

func (e *opError) Error() string { return "store: unable to " + e.op + ": " + e.err.Error() }

func (e *opError) Unwrap() error { return e.err }

// Is matches ErrStorageUnavailable when the failure was the database's.
func (e *opError) Is(target error) bool { return target == ErrStorageUnavailable && e.storage != "" }

// StorageProblemOf names the storage problem behind err ("" when there is none).
func StorageProblemOf(err error) StorageProblem {
	var op *opError
	if errors.As(err, &op) && op.storage != "" {
		return op.storage
	}
	return classifyStorage(err)
}

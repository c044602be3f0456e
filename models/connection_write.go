package models

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// SealedTokens are a connection's tokens, already encrypted for that connection's ID.
type SealedTokens struct {
	AccessEnc   string
	RefreshEnc  string // "" keeps the stored refresh token
	Fingerprint string
	ExpiresAt   time.Time
}

// Authorization is what a completed OAuth callback knows.
type Authorization struct {
	AppID        string
	LinkID       string // "" when none
	ConnectionID string // the connection a reconnect renews; "" for a new connect
	CustomerRef  string
	MaxDomain    string // the GetResponse MAX domain authorized on; "" for standard
	AccountID    string
	AccountEmail string
	AccountName  string
	CompanyName  string
	// Seal encrypts the new tokens for the connection ID the store settled on.
	Seal func(connectionID string) (SealedTokens, error)
}

// AuthorizationOutcome says what saving an authorization did.
type AuthorizationOutcome string

// The outcomes of SaveAuthorization.
const (
	AuthorizationCreated     AuthorizationOutcome = "created"
	AuthorizationReconnected AuthorizationOutcome = "reconnected"
	AuthorizationTransferred AuthorizationOutcome = "transferred"
	// AuthorizationRefused: the account is another customer's; nothing changed
	// but the refusal's event on that customer's connection.
	AuthorizationRefused AuthorizationOutcome = "refused"
)

// AuthorizationResult is the connection an authorization created, renewed,
// moved or (refused) left alone.
type AuthorizationResult struct {
	Connection *Connection
	Outcome    AuthorizationOutcome
	// PreviousCustomerRef is whom a transferred connection belonged to.
	PreviousCustomerRef string
}

// SaveAuthorization creates the connection for an authorized account, or renews
// the existing one with the same identity (app, MAX domain, account), keeping its
// ID and history, and records the event, in one transaction that also claims the
// link: a link completes once (ErrAlreadyUsed, or ErrRevoked after a revocation).
//
// An account connected for another customer is not moved unless the link allows
// a transfer: then the result is AuthorizationRefused with ErrTransferRefused,
// and the attempt is recorded (with its webhook) on that customer's connection.
func (s *Store) SaveAuthorization(ctx context.Context, a Authorization) (res *AuthorizationResult, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res = &AuthorizationResult{}
		now := Now()
		allowTransfer := false
		if a.LinkID != "" {
			// Claimed first: a concurrent flow of the same link waits here and fails.
			if err := claimLink(tx, a.LinkID, now); err != nil {
				return err
			}
			if err := tx.Model(&ConnectLink{}).Where("id = ?", a.LinkID).Pluck("allow_transfer", &allowTransfer).Error; err != nil {
				return err
			}
		}
		conn := &Connection{}
		var q *gorm.DB
		if a.ConnectionID != "" {
			q = tx.Where("id = ?", a.ConnectionID)
		} else {
			q = tx.Where("app_id = ? AND max_domain = ? AND account_id = ?", a.AppID, a.MaxDomain, a.AccountID)
		}
		if s.postgres {
			// A refresh committing between this read and the save below must not
			// be overwritten with a token_version it already used (SQLite's write
			// transaction serializes the two anyway).
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		err := q.First(conn).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound) && a.ConnectionID != "":
			return ErrNotFound
		case errors.Is(err, gorm.ErrRecordNotFound):
			res.Outcome = AuthorizationCreated
			conn = &Connection{ID: NewID("con"), AppID: a.AppID, MaxDomain: a.MaxDomain, AccountID: a.AccountID}
		case err != nil:
			return err
		case conn.AppID != a.AppID || conn.AccountID != a.AccountID || conn.MaxDomain != a.MaxDomain:
			return ErrAccountMismatch
		case a.ConnectionID == "" && a.CustomerRef != "" && conn.CustomerRef != "" && conn.CustomerRef != a.CustomerRef:
			if !allowTransfer {
				res.Connection, res.Outcome = conn, AuthorizationRefused
				return refuseTransfer(tx, conn, a, now)
			}
			res.Outcome, res.PreviousCustomerRef = AuthorizationTransferred, conn.CustomerRef
		default:
			res.Outcome = AuthorizationReconnected
		}
		sealed, err := a.Seal(conn.ID)
		if err != nil {
			return err
		}
		wasStatus := conn.Status
		if a.CustomerRef != "" {
			conn.CustomerRef = a.CustomerRef
		}
		conn.AccountEmail, conn.AccountName, conn.CompanyName = a.AccountEmail, a.AccountName, a.CompanyName
		conn.Status = StatusActive
		conn.AccessTokenEnc, conn.TokenFingerprint = sealed.AccessEnc, sealed.Fingerprint
		if sealed.RefreshEnc != "" {
			conn.RefreshTokenEnc = sealed.RefreshEnc
		}
		expires := sealed.ExpiresAt
		conn.ExpiresAt, conn.LastRefreshAt = &expires, &now
		conn.LastError, conn.FailureCount, conn.NextAttemptAt = "", 0, nil
		conn.LeaseOwner, conn.LeaseUntil = "", nil
		conn.TokenVersion, conn.InterruptedBy = conn.TokenVersion+1, ""
		conn.ConnectedAt, conn.DisconnectedAt = now, nil
		if res.Outcome == AuthorizationCreated {
			err = tx.Create(conn).Error
		} else {
			err = tx.Save(conn).Error
		}
		if err != nil {
			return translate(err)
		}
		res.Connection = conn
		ev := &Event{ConnectionID: &conn.ID, AppID: &conn.AppID, Actor: "customer", CreatedAt: now}
		switch res.Outcome {
		case AuthorizationCreated:
			ev.Type, ev.Message = EventConnectionCreated, "Connected GetResponse account "+describeAccount(conn)
		case AuthorizationTransferred:
			ev.Type, ev.PreviousCustomerRef = EventTransferred, res.PreviousCustomerRef
			ev.Message = "Moved from customer " + res.PreviousCustomerRef + " to customer " + conn.CustomerRef +
				" (GetResponse account " + describeAccount(conn) + "), by a link that allows a transfer"
		default:
			ev.Type, ev.Message = EventConnectionReconnected, "Reconnected GetResponse account "+describeAccount(conn)
			if wasStatus != "" && wasStatus != StatusActive {
				ev.Message += " (was " + string(wasStatus) + ")"
			}
		}
		if err := addEvent(tx, ev); err != nil {
			return err
		}
		if a.LinkID != "" {
			return finishLink(tx, a.LinkID, conn.ID, describeAccount(conn), now)
		}
		return nil
	})
	if err != nil {
		return nil, storeError(err, "save the authorization of account %s for app %s", a.AccountID, a.AppID)
	}
	if res.Outcome == AuthorizationRefused {
		return res, ErrTransferRefused
	}
	return res, nil
}

// refuseTransfer records, on the connection of the customer who holds the account,
// that another customer's flow authorized it and was refused. The link stays
// unused: its customer may try again with another account.
func refuseTransfer(tx *gorm.DB, conn *Connection, a Authorization, now time.Time) error {
	if a.LinkID != "" {
		// Undo the claim: the refusal completes nothing.
		if err := tx.Exec("UPDATE connect_links SET used_at = NULL WHERE id = ?", a.LinkID).Error; err != nil {
			return err
		}
	}
	msg := "Customer " + a.CustomerRef + " authorized this GetResponse account (" + describeAccount(conn) +
		") and was refused: it is connected for customer " + conn.CustomerRef + ". A connect link with allow_transfer would move it."
	return addEvent(tx, &Event{ConnectionID: &conn.ID, AppID: &conn.AppID, Type: EventTransferRefused, Message: msg,
		Actor: "customer", CreatedAt: now, AttemptedCustomerRef: a.CustomerRef})
}

func describeAccount(c *Connection) string {
	s := c.AccountID
	if c.AccountEmail != "" {
		s = c.AccountEmail + " (" + c.AccountID + ")"
	}
	return s
}

// RefreshResult is the outcome of one refresh attempt, written in one transaction.
type RefreshResult struct {
	Tokens *SealedTokens // set on success
	// On failure: the new status, the error in words and when to try again.
	Status        Status
	Error         string
	NextAttemptAt *time.Time
	Event         Event
	// Recovered adds a "connection.recovered" event after a success that follows failures.
	Recovered bool
	// Paused records a failure that is the app's, not the connection's: only the
	// error is written; status, failure count and backoff stay as they are.
	Paused bool
	// LeaseOwner is the lease the refresh ran under; the write releases it if it is
	// still held (it may have expired meanwhile: the outcome is written anyway).
	LeaseOwner string
	// At is when the refresh happened (the engine's clock); zero means now.
	At time.Time
}

// SaveRefresh writes a refresh's outcome for prev (the row as read under the lease)
// and its events atomically, and returns the row as now stored. It is one
// conditional UPDATE plus the event inserts, written only over the token pair prev
// held: a disconnected connection (ErrDisconnected), or one whose tokens were
// replaced meanwhile (ErrSuperseded), is left untouched.
func (s *Store) SaveRefresh(ctx context.Context, prev *Connection, r RefreshResult) (*Connection, error) {
	saved, errs, err := s.SaveRefreshes(ctx, []RefreshOutcome{{Prev: prev, Result: r}})
	if err != nil {
		return nil, err
	}
	return saved[0], errs[0]
}

// RefreshOutcome is one leased row with the result of its refresh.
type RefreshOutcome struct {
	Prev   *Connection
	Result RefreshResult
}

// SaveRefreshes commits several refresh outcomes in one transaction (the
// refresher's group commit): per outcome the conditional UPDATE, then the events in
// one INSERT and the day's counters in one upsert each. errs[i] is ErrDisconnected
// or ErrSuperseded for an outcome that was left untouched; err fails them all.
//
// extra are events of refreshes already stored (StoreRefreshTokens) that ride along.
func (s *Store) SaveRefreshes(ctx context.Context, outs []RefreshOutcome, extra ...*Event) (saved []*Connection, errs []error, err error) {
	saved, errs = make([]*Connection, len(outs)), make([]error, len(outs))
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if len(outs) == 0 {
			if err := s.logOnlyCommit(tx); err != nil {
				return err
			}
		}
		var events []*Event
		for i, o := range outs {
			conn, evs, err := applyRefresh(tx, o.Prev, o.Result)
			if errors.Is(err, ErrDisconnected) || errors.Is(err, ErrSuperseded) {
				errs[i] = err
				continue
			}
			if err != nil {
				return err
			}
			saved[i] = conn
			events = append(events, evs...)
		}
		return recordEvents(tx, append(events, extra...))
	})
	return saved, errs, storeError(err, "save %d refresh outcomes", len(outs))
}

// StoreRefreshTokens writes a successful refresh's new token pair in one UPDATE —
// sharing a transaction only with other new pairs (a group commit,
// token_commit.go), never with anything slower — so a received pair reaches the
// disk as soon as it can. It is written only over the pair prev held
// (ErrSuperseded otherwise; ErrDisconnected for a disconnected connection). It
// returns the row as stored and the events to record with RecordRefreshEvents.
func (s *Store) StoreRefreshTokens(ctx context.Context, prev *Connection, r RefreshResult) (*Connection, []*Event, error) {
	conn, events, err := s.storeTokens(ctx, prev, r)
	if err != nil {
		return nil, nil, storeError(err, "store the new tokens of connection %s", prev.ID)
	}
	return conn, events, nil
}

// RecordRefreshEvents writes refresh events (and the webhooks they send) with the
// day's refresh counters, in one transaction.
func (s *Store) RecordRefreshEvents(ctx context.Context, events []*Event) error {
	if len(events) == 0 {
		return nil
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.logOnlyCommit(tx); err != nil {
			return err
		}
		return recordEvents(tx, events)
	})
	return storeError(err, "record %d refresh events", len(events))
}

// logOnlyCommit lets a transaction that writes only the timeline and the day's
// counters (the events of refreshes whose pairs are already stored) commit
// without waiting for PostgreSQL to flush its log: a crash of the database
// server may lose its last fraction of a second of such entries, never a token.
// At a thousand refreshes a second, those flushes were a third of the database's.
// (SQLite's WAL commits do not wait for the disk anyway: synchronous=NORMAL.)
func (s *Store) logOnlyCommit(tx *gorm.DB) error {
	if !s.postgres {
		return nil
	}
	return tx.Exec("SET LOCAL synchronous_commit = off").Error
}

// recordEvents writes events and counts the refreshes among them per day.
func recordEvents(tx *gorm.DB, events []*Event) error {
	if err := addEvents(tx, events); err != nil {
		return err
	}
	counts := map[string][2]int{} // day → succeeded, failed
	for _, e := range events {
		day := e.CreatedAt.UTC().Format(dayLayout)
		c := counts[day]
		switch e.Type {
		case EventRefreshSucceeded:
			c[0]++
		case EventRefreshFailed, EventNeedsReconnect, EventRefreshPaused, EventRefreshFailedAgain:
			c[1]++
		default:
			continue
		}
		counts[day] = c
	}
	for day, c := range counts {
		if err := countRefreshes(tx, day, c[0], c[1]); err != nil {
			return err
		}
	}
	return nil
}

// applyRefresh runs one outcome's conditional UPDATE and returns the row as stored
// and the events to record.
func applyRefresh(tx *gorm.DB, prev *Connection, r RefreshResult) (*Connection, []*Event, error) {
	now := r.At
	if now.IsZero() {
		now = Now()
	}
	conn := *prev
	conn.UpdatedAt, conn.LeaseOwner, conn.LeaseUntil = now, "", nil
	// Plain SQL, built from a few fixed shapes: this runs for every refresh, and
	// GORM's map-based Updates cost more than the UPDATE itself. The lease is
	// released only if it is still this refresh's (the CASEs read the old row).
	set := "updated_at = ?, lease_owner = CASE WHEN lease_owner = ? THEN '' ELSE lease_owner END, " +
		"lease_until = CASE WHEN lease_owner = ? THEN NULL ELSE lease_until END"
	args := []any{now, r.LeaseOwner, r.LeaseOwner}
	// clean: prev was a healthy active row, so a new pair leaves the state columns
	// alone. The write then also requires them to be clean still: another
	// process's failed refresh may have written its outcome over the same pair
	// meanwhile (a dead-token refresh while this pair waited for the database).
	clean := r.Tokens != nil && prev.Status == StatusActive && prev.FailureCount == 0 && prev.LastError == "" && prev.NextAttemptAt == nil
	if r.Tokens != nil {
		set += ", token_version = token_version + 1, interrupted_by = ''"
		conn.TokenVersion, conn.InterruptedBy = prev.TokenVersion+1, ""
		expires := r.Tokens.ExpiresAt
		conn.AccessTokenEnc, conn.TokenFingerprint, conn.ExpiresAt = r.Tokens.AccessEnc, r.Tokens.Fingerprint, &expires
		set += ", access_token_enc = ?, token_fingerprint = ?, expires_at = ?, last_refresh_at = ?"
		args = append(args, conn.AccessTokenEnc, conn.TokenFingerprint, expires, now)
		if r.Tokens.RefreshEnc != "" {
			conn.RefreshTokenEnc = r.Tokens.RefreshEnc
			set += ", refresh_token_enc = ?"
			args = append(args, r.Tokens.RefreshEnc)
		}
		if !clean {
			// Only a recovery touches these; status is indexed, so leave it alone otherwise.
			set += ", status = ?, last_error = '', failure_count = 0, next_attempt_at = NULL"
			args = append(args, StatusActive)
		}
		conn.Status, conn.LastRefreshAt, conn.LastError, conn.FailureCount, conn.NextAttemptAt = StatusActive, &now, "", 0, nil
	} else if r.Paused {
		conn.LastError = r.Error
		set += ", last_error = ?"
		args = append(args, r.Error)
	} else {
		conn.Status, conn.LastError, conn.FailureCount, conn.NextAttemptAt = r.Status, r.Error, prev.FailureCount+1, r.NextAttemptAt
		set += ", status = ?, last_error = ?, failure_count = failure_count + 1, next_attempt_at = ?"
		args = append(args, r.Status, r.Error, r.NextAttemptAt)
	}
	// Written only over the pair this refresh started from: a newer pair (another
	// refresh, a reconnect) is never overwritten, and a late pair lands otherwise.
	where := " WHERE id = ? AND status <> ? AND token_version = ?"
	args = append(args, prev.ID, StatusDisconnected, prev.TokenVersion)
	if clean {
		where += " AND status = ? AND failure_count = 0 AND last_error = '' AND next_attempt_at IS NULL"
		args = append(args, StatusActive)
	}
	res := tx.Exec("UPDATE connections SET "+set+where, args...)
	if res.Error != nil {
		return nil, nil, res.Error
	}
	if res.RowsAffected == 0 {
		var stored Connection
		err := tx.Select("id, status, token_version, last_error, failure_count, next_attempt_at").Where("id = ?", prev.ID).Take(&stored).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			return nil, nil, ErrDisconnected
		case err != nil:
			return nil, nil, err
		case stored.Status == StatusDisconnected:
			return nil, nil, ErrDisconnected
		case stored.TokenVersion != prev.TokenVersion || !clean:
			return nil, nil, ErrSuperseded
		}
		// The same pair, but its state moved on (a failed refresh, a needs_reconnect
		// written by a refresh that presented the pair's dead token): the new pair
		// is stored with the state recomputed from what is stored, never from the
		// stale copy.
		moved := *prev
		moved.Status, moved.LastError, moved.FailureCount, moved.NextAttemptAt = stored.Status, stored.LastError, stored.FailureCount, stored.NextAttemptAt
		r.Recovered = moved.Status != StatusActive || moved.LastError != ""
		return applyRefresh(tx, &moved, r)
	}
	ev := r.Event
	ev.ConnectionID, ev.AppID, ev.CreatedAt = &conn.ID, &conn.AppID, now
	events := []*Event{&ev}
	if r.Recovered {
		events = append(events, &Event{ConnectionID: &conn.ID, AppID: &conn.AppID, Type: EventRecovered,
			Message: "Recovered: tokens refresh again (was " + string(prev.Status) + ")", Actor: ev.Actor, CreatedAt: now})
	}
	return &conn, events, nil
}

// Disconnect erases a connection's tokens and marks it disconnected, keeping its history.
func (s *Store) Disconnect(ctx context.Context, id, actor string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// One conditional UPDATE decides: of two disconnects at once, only the one
		// that changed the row records an event and an audit entry.
		changed, err := disconnect(tx, id, actor, "Disconnected; tokens erased")
		if err != nil || changed {
			if err == nil {
				err = writeAudit(ctx, tx)
			}
			return err
		}
		var n int64
		if err := tx.Model(&Connection{}).Where("id = ?", id).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return nil // disconnected already: nothing to do, nothing to record
	})
	return storeError(err, "disconnect connection %s", id)
}

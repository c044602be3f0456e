package services

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// SealedCheck is what Verify found in one sealed field.
type SealedCheck struct {
	Table, Field string
	// Opened values opened with a configured key; Empty fields hold nothing.
	Opened, Empty int
	// UnknownKey counts, by key ID, the values sealed with a key that is not
	// configured (a wrong key, or a previous key that was dropped).
	UnknownKey map[string]int
	// Damaged values name a configured key (or none) but do not open: altered,
	// truncated or copied onto another row. DamagedRows lists the first few rows.
	Damaged     int
	DamagedRows []string
}

// VerifyReport is what grconnect verify found.
type VerifyReport struct {
	// Backup is set when the database is a backup made by grconnect backup.
	Backup *models.BackupInfo
	// SchemaVersion is the highest applied migration; Pending the migrations of
	// this build not applied yet.
	SchemaVersion int
	Pending       []string
	// IntegrityChecked is false on PostgreSQL; Integrity lists what SQLite's
	// integrity and foreign-key checks found.
	IntegrityChecked bool
	Integrity        []string
	// KeyID and PreviousKeyIDs are the configured keys ("" without a key).
	KeyID          string
	PreviousKeyIDs []string
	Sealed         []SealedCheck
	Rows           []models.TableRows
	// Problems says, one line each, what is wrong; none means the database is sound.
	Problems []string
	// Notes are worth knowing but wrong with nothing.
	Notes []string
}

// damagedRowsShown bounds the rows a report names per field.
const damagedRowsShown = 10

// Verify checks a database (the live one, or a backup opened read-only): its
// schema, SQLite's integrity, every sealed value against the configured keys (box;
// nil when no key is configured), and counts the rows. It writes nothing.
func Verify(ctx context.Context, store *models.Store, box *secrets.Box) (*VerifyReport, error) {
	r := &VerifyReport{}
	var err error
	if r.SchemaVersion, r.Pending, err = store.SchemaStatus(ctx); err != nil {
		return nil, err
	}
	info, err := store.ReadBackupInfo(ctx)
	switch {
	case err == nil:
		r.Backup = info
	case !errors.Is(err, models.ErrNotFound):
		return nil, err
	}
	switch expected := models.SchemaVersion(); {
	case r.SchemaVersion > expected:
		r.Problems = append(r.Problems, fmt.Sprintf("schema: the database is at version %d, newer than this grconnect understands (%d): use a newer grconnect", r.SchemaVersion, expected))
	case len(r.Pending) > 0 && r.Backup != nil:
		r.Notes = append(r.Notes, "schema: migrations "+strings.Join(r.Pending, ", ")+" are not in this backup; restore applies them")
	case len(r.Pending) > 0:
		r.Problems = append(r.Problems, "schema: migrations "+strings.Join(r.Pending, ", ")+" are not applied: run grconnect migrate")
	}
	if r.Integrity, r.IntegrityChecked, err = store.IntegrityProblems(ctx); err != nil {
		r.Problems = append(r.Problems, "integrity: the check itself failed: "+err.Error())
	}
	for _, p := range r.Integrity {
		r.Problems = append(r.Problems, "integrity: "+p)
	}
	if box == nil {
		r.Problems = append(r.Problems, "keys: no secret key is configured, so no sealed value could be checked (set GRCONNECT_SECRET_KEY, or put secret.key beside the database)")
	} else {
		r.KeyID, r.PreviousKeyIDs = box.KeyID(), box.PreviousKeyIDs()
		if err := verifySealed(ctx, store, box, r); err != nil {
			return nil, err
		}
	}
	if r.Backup != nil && box != nil && !box.HasKey(r.Backup.KeyID) && !slices.ContainsFunc(r.Problems, func(p string) bool { return strings.HasPrefix(p, "keys:") }) {
		r.Notes = append(r.Notes, fmt.Sprintf("keys: this backup was taken with key ID %s; the configured key is %s", r.Backup.KeyID, describeKeys(r.KeyID, r.PreviousKeyIDs)))
	}
	if r.Rows, err = store.CountRows(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// verifySealed opens every sealed value and adds what failed to r's problems.
func verifySealed(ctx context.Context, store *models.Store, box *secrets.Box, r *VerifyReport) error {
	unknown := map[string]int{}
	for _, t := range models.SealedTables {
		checks := make([]SealedCheck, len(t.Fields))
		for i, f := range t.Fields {
			checks[i] = SealedCheck{Table: t.Table, Field: f.Field, UnknownKey: map[string]int{}}
		}
		after := ""
		for {
			rows, err := store.SealedRows(ctx, t, after, 1000)
			if err != nil {
				if strings.Contains(err.Error(), "no such table") {
					break // a backup from before the table existed
				}
				return err
			}
			if len(rows) == 0 {
				break
			}
			after = rows[len(rows)-1].Key
			for _, row := range rows {
				for i, f := range t.Fields {
					c := &checks[i]
					v := row.Values[f.Column]
					if v == "" {
						c.Empty++
						continue
					}
					if _, err := box.Open(v, secrets.AAD(t.Kind, row.Key, f.Field)); err == nil {
						c.Opened++
						continue
					}
					if id := secrets.SealedKeyID(v); id != "" && !box.HasKey(id) {
						c.UnknownKey[id]++
						unknown[id]++
						continue
					}
					c.Damaged++
					if len(c.DamagedRows) < damagedRowsShown {
						c.DamagedRows = append(c.DamagedRows, row.Key)
					}
				}
			}
		}
		r.Sealed = append(r.Sealed, checks...)
	}
	if len(unknown) > 0 {
		var parts []string
		total := 0
		for _, id := range slices.Sorted(maps.Keys(unknown)) {
			parts = append(parts, fmt.Sprintf("%d with key ID %s", unknown[id], id))
			total += unknown[id]
		}
		msg := fmt.Sprintf("keys: %d sealed values were sealed with a key that is not configured (%s); the configured key is %s. "+
			"Start with the key the data was sealed with (during a rotation, list the old key in GRCONNECT_PREVIOUS_SECRET_KEYS)",
			total, strings.Join(parts, ", "), describeKeys(r.KeyID, r.PreviousKeyIDs))
		if r.Backup != nil {
			msg += fmt.Sprintf("; the backup was taken with key ID %s", r.Backup.KeyID)
		}
		r.Problems = append(r.Problems, msg)
	}
	for _, c := range r.Sealed {
		if c.Damaged == 0 {
			continue
		}
		rows := strings.Join(c.DamagedRows, ", ")
		if c.Damaged > len(c.DamagedRows) {
			rows += fmt.Sprintf(" and %d more", c.Damaged-len(c.DamagedRows))
		}
		r.Problems = append(r.Problems, fmt.Sprintf("damaged: %d %s %s values do not open although their key is configured (altered, cut short or moved to another row): %s",
			c.Damaged, c.Table, c.Field, rows))
	}
	return nil
}

// describeKeys says which keys are configured: "1a2b3c4d (previous: 5e6f7a8b)".
func describeKeys(current string, previous []string) string {
	if len(previous) == 0 {
		return current
	}
	return current + " (previous: " + strings.Join(previous, ", ") + ")"
}

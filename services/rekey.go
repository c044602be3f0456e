package services

import (
	"context"
	"errors"
	"fmt"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// rekeyAttempts bounds the re-reads of a row that changed while it was re-sealed.
const rekeyAttempts = 5

// RekeyCount is what a key rotation did to one sealed field.
type RekeyCount struct {
	Table, Field string
	// Resealed values were sealed with a previous key and now use the current one.
	Resealed int
	// Current values already used the current key (or were written meanwhile).
	Current int
	// Unreadable values opened with no key of the box; they were left as they are.
	Unreadable int
}

// Rekey re-seals every stored secret (models.SealedTables) with the box's current
// key, reading with any of its keys, batch rows at a time. It is safe while servers
// run: each row is written only if it still holds what was read (a refresh that
// stored new tokens meanwhile wins, and its tokens are sealed with the current key
// already), and safe to interrupt and run again: values already on the current key
// are left alone. A connection's token fingerprint, keyed by the secret key, is
// recomputed with its access token.
func Rekey(ctx context.Context, store *models.Store, box *secrets.Box, batch int) ([]RekeyCount, error) {
	var out []RekeyCount
	for _, t := range models.SealedTables {
		counts := make([]RekeyCount, len(t.Fields))
		for i, f := range t.Fields {
			counts[i] = RekeyCount{Table: t.Table, Field: f.Field}
		}
		after := ""
		for {
			rows, err := store.SealedRows(ctx, t, after, batch)
			if err != nil {
				return out, err
			}
			if len(rows) == 0 {
				break
			}
			after = rows[len(rows)-1].Key
			pending := rows
			for attempt := 0; len(pending) > 0; attempt++ {
				if attempt == rekeyAttempts {
					return out, fmt.Errorf("rekey: rows of %s kept changing while being re-sealed; run grconnect rekey again", t.Table)
				}
				plans := planReseal(box, t, pending)
				var updates []models.Reseal
				for _, p := range plans {
					if len(p.update.New) > 0 {
						updates = append(updates, p.update)
					}
				}
				written, err := store.ResealRows(ctx, t, updates)
				if err != nil {
					return out, err
				}
				done := map[string]bool{}
				for _, k := range written {
					done[k] = true
				}
				var again []models.SealedRow
				for _, p := range plans {
					if len(p.update.New) > 0 && !done[p.update.Key] {
						// Changed meanwhile (a refresh, say): look at the row again.
						row, err := store.SealedRowByKey(ctx, t, p.update.Key)
						if errors.Is(err, models.ErrNotFound) {
							continue // deleted meanwhile
						}
						if err != nil {
							return out, err
						}
						again = append(again, *row)
						continue
					}
					for i, st := range p.states {
						switch st {
						case valueResealed:
							counts[i].Resealed++
						case valueCurrent:
							counts[i].Current++
						case valueUnreadable:
							counts[i].Unreadable++
						}
					}
				}
				pending = again
			}
		}
		out = append(out, counts...)
	}
	resealed, unreadable := 0, 0
	for _, c := range out {
		resealed += c.Resealed
		unreadable += c.Unreadable
	}
	details := fmt.Sprintf("Stored secrets re-sealed with key ID %s: %d re-sealed, %d unreadable", box.KeyID(), resealed, unreadable)
	return out, store.RecordAction(ctx, models.AuditRekeyed, TargetInstall, "", details)
}

// valueState is what a rekey found in one sealed field.
type valueState int

const (
	valueEmpty valueState = iota
	valueCurrent
	valueResealed
	valueUnreadable
)

// rowPlan is one row's re-sealed values and the state of each of its fields.
type rowPlan struct {
	update models.Reseal
	states []valueState
}

// planReseal opens each row's values sealed with a previous key and seals them
// with the current one.
func planReseal(box *secrets.Box, t models.SealedTable, rows []models.SealedRow) []rowPlan {
	plans := make([]rowPlan, 0, len(rows))
	for _, r := range rows {
		p := rowPlan{update: models.Reseal{Key: r.Key, Old: map[string]string{}, New: map[string]string{}}, states: make([]valueState, len(t.Fields))}
		for i, f := range t.Fields {
			v := r.Values[f.Column]
			switch {
			case v == "":
				continue
			case box.IsCurrent(v):
				p.states[i] = valueCurrent
				continue
			}
			aad := secrets.AAD(t.Kind, r.Key, f.Field)
			plain, err := box.Open(v, aad)
			if err != nil {
				p.states[i] = valueUnreadable
				continue
			}
			sealed, err := box.Seal(plain, aad)
			if err != nil {
				p.states[i] = valueUnreadable
				continue
			}
			p.states[i] = valueResealed
			p.update.Old[f.Column], p.update.New[f.Column] = v, sealed
			if t.Table == "connections" && f.Column == "access_token_enc" {
				p.update.Extra = map[string]any{"token_fingerprint": box.Fingerprint(plain)}
			}
		}
		plans = append(plans, p)
	}
	return plans
}

// RemainingUnderPreviousKeys counts the stored values not sealed with the box's
// current key: after a rekey with every server on the new key, zero, and the
// previous keys can be dropped.
func RemainingUnderPreviousKeys(ctx context.Context, store *models.Store, box *secrets.Box) (int, error) {
	n := 0
	for _, t := range models.SealedTables {
		after := ""
		for {
			rows, err := store.SealedRows(ctx, t, after, 1000)
			if err != nil {
				return n, err
			}
			if len(rows) == 0 {
				break
			}
			after = rows[len(rows)-1].Key
			for _, r := range rows {
				for _, v := range r.Values {
					if !box.IsCurrent(v) {
						n++
					}
				}
			}
		}
	}
	return n, nil
}

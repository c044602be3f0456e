package models

import (
	"context"

	"gorm.io/gorm"
)

// connectionNameSQL is how a connection is named for people, as its page heads
// it: the GetResponse account's e-mail, else the customer reference, else the
// account ID.
const connectionNameSQL = `COALESCE(NULLIF(account_email, ''), NULLIF(customer_ref, ''), account_id)`

// auditNameQueries read a target's name by its ID, per target type. Types
// without one (the install) have no name.
var auditNameQueries = map[string]string{
	AuditTargetOperator:   "SELECT email FROM operators WHERE id = ?",
	AuditTargetInvitation: "SELECT email FROM operator_invitations WHERE id = ?",
	AuditTargetApp:        "SELECT name FROM apps WHERE id = ?",
	AuditTargetAPIKey:     "SELECT name FROM api_keys WHERE id = ?",
	AuditTargetLink:       "SELECT customer_ref FROM connect_links WHERE id = ?",
	AuditTargetConnection: "SELECT " + connectionNameSQL + " FROM connections WHERE id = ?",
	AuditTargetBulkJob:    "SELECT scope FROM bulk_jobs WHERE id = ?",
}

// auditTargetName returns the name target (of targetType) has now, "" when it
// has none or no longer exists. Callers that delete the target in the same
// transaction name it themselves (AuditEntry.TargetName).
func auditTargetName(tx *gorm.DB, targetType, id string) (string, error) {
	q, ok := auditNameQueries[targetType]
	if !ok {
		return "", nil
	}
	var names []string
	if err := tx.Raw(q, id).Scan(&names).Error; err != nil {
		return "", err
	}
	if len(names) == 0 {
		return "", nil
	}
	return names[0], nil
}

// AuditTargetRef names one target of an audit entry.
type AuditTargetRef struct{ Type, ID string }

// LiveAuditTargets returns which of refs still exist (a deleted app does not),
// each with the ID of the app it belongs to for the types whose page needs it
// (a connect link's), "" otherwise. One query per target type.
func (s *Store) LiveAuditTargets(ctx context.Context, refs []AuditTargetRef) (map[AuditTargetRef]string, error) {
	byType := map[string][]string{}
	for _, r := range refs {
		byType[r.Type] = append(byType[r.Type], r.ID)
	}
	queries := map[string]string{
		AuditTargetOperator:   "SELECT id, '' FROM operators WHERE id IN ?",
		AuditTargetInvitation: "SELECT id, '' FROM operator_invitations WHERE id IN ?",
		AuditTargetApp:        "SELECT id, '' FROM apps WHERE deleted_at IS NULL AND id IN ?",
		AuditTargetAPIKey:     "SELECT id, '' FROM api_keys WHERE id IN ?",
		AuditTargetLink:       "SELECT id, app_id FROM connect_links WHERE id IN ?",
		AuditTargetConnection: "SELECT id, '' FROM connections WHERE id IN ?",
		AuditTargetBulkJob:    "SELECT id, '' FROM bulk_jobs WHERE id IN ?",
	}
	out := map[AuditTargetRef]string{}
	for typ, ids := range byType {
		q, ok := queries[typ]
		if !ok {
			continue
		}
		rows, err := s.db.WithContext(ctx).Raw(q, ids).Rows()
		if err != nil {
			return nil, storeError(err, "find live %s targets of audit entries", typ)
		}
		for rows.Next() {
			var id, parent string
			if err := rows.Scan(&id, &parent); err != nil {
				rows.Close()
				return nil, storeError(err, "find live %s targets of audit entries", typ)
			}
			out[AuditTargetRef{typ, id}] = parent
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, storeError(err, "find live %s targets of audit entries", typ)
		}
	}
	return out, nil
}

package models

import (
	"context"
	"strings"

	"gorm.io/gorm"
)

// SealedTable describes where a table keeps sealed values, for the key rotation
// (grconnect rekey) and the start-up key checks. Each value was sealed with the
// additional data "Kind:<row key>:Field".
type SealedTable struct {
	Table  string
	Key    string // the row's identifying column
	Kind   string
	Fields []SealedField
}

// SealedField is one sealed column of a SealedTable.
type SealedField struct {
	Column string
	Field  string // the field name in the additional data
}

// SealedTables lists every sealed value grconnect stores. A new sealed column is
// added here, or grconnect rekey leaves it under the old key.
var SealedTables = []SealedTable{
	{Table: "apps", Key: "id", Kind: "app", Fields: []SealedField{
		{Column: "client_secret_enc", Field: "client_secret"}, {Column: "webhook_secret_enc", Field: "webhook_secret"},
		{Column: "webhook_previous_secret_enc", Field: "webhook_previous_secret"}}},
	{Table: "connections", Key: "id", Kind: "connection", Fields: []SealedField{
		{Column: "access_token_enc", Field: "access_token"}, {Column: "refresh_token_enc", Field: "refresh_token"},
		{Column: "events_token_enc", Field: "events_token"}}},
	// A disconnected connection's access token, kept until its callbacks are
	// removed, is sealed as the connection's own.
	{Table: "connection_callbacks", Key: "connection_id", Kind: "connection", Fields: []SealedField{
		{Column: "access_token_enc", Field: "access_token"}}},
	{Table: "connect_links", Key: "id", Kind: "connect_link", Fields: []SealedField{{Column: "token_enc", Field: "token"}}},
	{Table: "install_secrets", Key: "name", Kind: "install", Fields: []SealedField{{Column: "value_enc", Field: "value"}}},
	{Table: "demo_states", Key: "app_id", Kind: "demo_state", Fields: []SealedField{{Column: "snapshot_enc", Field: "snapshot"}}},
}

// SealedRow is one row's sealed values, by column.
type SealedRow struct {
	Key    string
	Values map[string]string
}

// SealedRows returns up to limit rows of t after the row key after ("" for the
// first), in key order, with their sealed columns.
func (s *Store) SealedRows(ctx context.Context, t SealedTable, after string, limit int) ([]SealedRow, error) {
	return s.sealedRows(ctx, t, s.db.WithContext(ctx).Table(t.Table).Where(t.Key+" > ?", after).Order(t.Key).Limit(limit))
}

// SealedRowByKey returns one row of t with its sealed columns, or ErrNotFound.
func (s *Store) SealedRowByKey(ctx context.Context, t SealedTable, key string) (*SealedRow, error) {
	rows, err := s.sealedRows(ctx, t, s.db.WithContext(ctx).Table(t.Table).Where(t.Key+" = ?", key))
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, ErrNotFound
	}
	return &rows[0], nil
}

func (s *Store) sealedRows(ctx context.Context, t SealedTable, q *gorm.DB) ([]SealedRow, error) {
	cols := []string{t.Key}
	for _, f := range t.Fields {
		cols = append(cols, f.Column)
	}
	// Names come from SealedTables, never from input.
	rows, err := q.Select(strings.Join(cols, ", ")).Rows()
	if err != nil {
		return nil, storeError(err, "read sealed values of %s", t.Table)
	}
	defer rows.Close()
	var out []SealedRow
	for rows.Next() {
		vals := make([]string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, storeError(err, "read sealed values of %s", t.Table)
		}
		r := SealedRow{Key: vals[0], Values: map[string]string{}}
		for i, f := range t.Fields {
			r.Values[f.Column] = vals[i+1]
		}
		out = append(out, r)
	}
	return out, storeError(rows.Err(), "read sealed values of %s", t.Table)
}

// ResealRows writes re-sealed values, each only if its row still holds the values
// it was read with (compare-and-swap: a refresh that wrote new tokens meanwhile
// wins), in one transaction. extra sets further columns of a row with its values
// (a connection's token fingerprint). It returns the keys of the rows it wrote.
func (s *Store) ResealRows(ctx context.Context, t SealedTable, updates []Reseal) ([]string, error) {
	if t.Table == "apps" {
		defer s.AppsWritten()
	}
	var written []string
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		written = written[:0]
		for _, u := range updates {
			q := tx.Table(t.Table).Where(t.Key+" = ?", u.Key)
			set := map[string]any{}
			for col, old := range u.Old {
				q = q.Where(col+" = ?", old)
			}
			for col, v := range u.New {
				set[col] = v
			}
			for col, v := range u.Extra {
				set[col] = v
			}
			res := q.Updates(set)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 1 {
				written = append(written, u.Key)
			}
		}
		return nil
	})
	return written, storeError(err, "write re-sealed values of %s", t.Table)
}

// Reseal is one row's new sealed values, written only over Old.
type Reseal struct {
	Key      string
	Old, New map[string]string
	Extra    map[string]any
}

// AnySealedValue returns one stored sealed value and the additional data it was
// sealed with, or ErrNotFound when nothing sealed is stored: a key that opens it is
// the install's key.
func (s *Store) AnySealedValue(ctx context.Context) (sealed, aad string, err error) {
	for _, t := range SealedTables {
		for _, f := range t.Fields {
			var row struct{ K, V string }
			err := s.db.WithContext(ctx).Table(t.Table).Select(t.Key + " AS k, " + f.Column + " AS v").
				Where(f.Column + " <> ''").Limit(1).Scan(&row).Error
			if err != nil {
				return "", "", storeError(err, "look for a sealed value in %s", t.Table)
			}
			if row.V != "" {
				return row.V, t.Kind + ":" + row.K + ":" + f.Field, nil
			}
		}
	}
	return "", "", ErrNotFound
}

// InstallSecret returns the sealed value stored under name, or ErrNotFound.
func (s *Store) InstallSecret(ctx context.Context, name string) (string, error) {
	var v []string
	err := s.db.WithContext(ctx).Table("install_secrets").Where("name = ?", name).Limit(1).Pluck("value_enc", &v).Error
	if err != nil {
		return "", storeError(err, "read install secret %s", name)
	}
	if len(v) == 0 {
		return "", ErrNotFound
	}
	return v[0], nil
}

// AddInstallSecret stores a sealed value under name unless one is already there
// (ErrDuplicate): of several processes starting at once, the first one's stays.
func (s *Store) AddInstallSecret(ctx context.Context, name, sealed string) error {
	res := s.db.WithContext(ctx).Exec("INSERT INTO install_secrets (name, value_enc, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
		name, sealed, Now())
	if res.Error != nil {
		return storeError(res.Error, "store install secret %s", name)
	}
	if res.RowsAffected == 0 {
		return ErrDuplicate
	}
	return nil
}

package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// copyTables are the tables CopyTo moves, each after the tables it refers to.
var copyTables = []string{
	"schema_migrations", "operators", "apps", "connections", "connect_links", "auth_states", "events",
	"login_throttles", "api_keys", "webhook_deliveries", "daily_refresh_stats", "bulk_jobs", "demo_states",
	"operator_sessions", "install_secrets", "password_resets", "audit_log", "alert_cursor", "operator_invitations",
	"inbound_events", "connection_callbacks",
}

// seededTables hold rows their migration inserts, which the source's replace.
var seededTables = []string{"schema_migrations", "alert_cursor"}

// uncopiedTables stay behind: proxy_slots, proxy_backoff and proxy_shares only
// hold calls in flight, store_probe is the readiness probe's scratch row,
// backup_info describes a backup file, not an install, replicas are the
// heartbeats of running processes, connection_counts is rebuilt by the target's
// triggers as the connections arrive, and connection_search with its FTS5 index
// (and the index's own tables) is SQLite's search index, which PostgreSQL keeps
// as an index of its own.
var uncopiedTables = []string{"proxy_slots", "proxy_backoff", "proxy_shares", "store_probe", "backup_info", "replicas",
	"connection_counts", "connection_search", "connection_search_index", "connection_search_index_data",
	"connection_search_index_idx", "connection_search_index_docsize", "connection_search_index_config"}

// serialTables have an autoincrement ID whose PostgreSQL sequence must continue after
// the copied rows.
var serialTables = []string{"events", "webhook_deliveries", "audit_log", "inbound_events"}

// TableCount is how many rows one table holds in the source and in the target.
type TableCount struct {
	Table          string
	Source, Target int64
}

// CopyTo copies every row of s (a SQLite database at the current schema version)
// into dst, an empty PostgreSQL database: it creates the schema, copies the tables in
// one transaction (sealed values move as they are: nothing is decrypted), moves the
// autoincrement sequences past the copied IDs, and verifies each table's row count.
func (s *Store) CopyTo(ctx context.Context, dst *Store) ([]TableCount, error) {
	if !dst.postgres {
		return nil, errors.New("copy-db copies into PostgreSQL only (--to postgres://…)")
	}
	if s.postgres {
		return nil, errors.New("copy-db copies a SQLite database; this one is already PostgreSQL")
	}
	var tables int64
	if err := dst.db.WithContext(ctx).Raw(`SELECT COUNT(*) FROM information_schema.tables
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`).Scan(&tables).Error; err != nil {
		return nil, storeError(err, "count the target database's tables")
	}
	if tables > 0 {
		return nil, ErrTargetNotEmpty
	}
	v, err := s.CurrentSchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	if v != SchemaVersion() {
		return nil, fmt.Errorf("the source database is at schema version %d, want %d: run grconnect migrate on it first", v, SchemaVersion())
	}
	if _, err := dst.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("create the schema in the target: %w", err)
	}
	src, err := s.readPool()
	if err != nil {
		return nil, storeError(err, "open the source database's pool")
	}
	target, err := dst.db.DB()
	if err != nil {
		return nil, storeError(err, "open the target database's pool")
	}
	tx, err := target.BeginTx(ctx, nil)
	if err != nil {
		return nil, storeError(err, "begin the copy's transaction")
	}
	defer tx.Rollback()
	// The migrations' own rows are replaced by the source's (its history, and the
	// alert cursor, so past events are not e-mailed again).
	for _, table := range seededTables {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+table); err != nil {
			return nil, storeError(err, "clear the target's %s", table)
		}
	}
	for _, table := range copyTables {
		if err := copyTable(ctx, src, tx, table); err != nil {
			return nil, storeError(err, "copy table %s", table)
		}
	}
	for _, table := range serialTables {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(
			`SELECT setval(pg_get_serial_sequence('%[1]s', 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM %[1]s`, table)); err != nil {
			return nil, storeError(err, "reset the %s sequence", table)
		}
	}
	counts := make([]TableCount, 0, len(copyTables))
	var mismatch []string
	for _, table := range copyTables {
		c := TableCount{Table: table}
		if err := src.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&c.Source); err != nil {
			return nil, storeError(err, "count the source's %s", table)
		}
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&c.Target); err != nil {
			return nil, storeError(err, "count the target's %s", table)
		}
		if c.Source != c.Target {
			mismatch = append(mismatch, fmt.Sprintf("%s: %d rows in the source, %d copied", table, c.Source, c.Target))
		}
		counts = append(counts, c)
	}
	if len(mismatch) > 0 {
		// The source changed while it was copied (a server still running on it).
		return counts, fmt.Errorf("row counts differ, nothing was committed (stop grconnect before copying): %s", strings.Join(mismatch, "; "))
	}
	return counts, storeError(tx.Commit(), "commit the copy")
}

// copyBatch is how many rows one INSERT carries (PostgreSQL allows 65,535 parameters).
const copyBatch = 500

// copyTable copies one table's rows, converting SQLite's storage (0/1 booleans,
// times as text) into the target column's type.
func copyTable(ctx context.Context, src *sql.DB, tx *sql.Tx, table string) error {
	kinds, err := columnKinds(ctx, tx, table)
	if err != nil {
		return err
	}
	rows, err := src.QueryContext(ctx, "SELECT * FROM "+table)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	insert := "INSERT INTO " + table + " (" + strings.Join(quoteAll(cols), ", ") + ") VALUES "
	var args []any
	var values []string
	flush := func() error {
		if len(values) == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, insert+strings.Join(values, ", "), args...)
		args, values = args[:0], values[:0]
		return err
	}
	for rows.Next() {
		raw := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range raw {
			ptrs[i] = &raw[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		marks := make([]string, len(cols))
		for i, col := range cols {
			v, err := convertValue(raw[i], kinds[col])
			if err != nil {
				return fmt.Errorf("column %s: %w", col, err)
			}
			args = append(args, v)
			marks[i] = "$" + strconv.Itoa(len(args))
		}
		values = append(values, "("+strings.Join(marks, ", ")+")")
		if len(values) == copyBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return flush()
}

// columnKinds returns the PostgreSQL data type of each of table's columns.
func columnKinds(ctx context.Context, tx *sql.Tx, table string) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	kinds := map[string]string{}
	for rows.Next() {
		var name, kind string
		if err := rows.Scan(&name, &kind); err != nil {
			return nil, err
		}
		kinds[name] = kind
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("table %s is missing in the target", table)
	}
	return kinds, rows.Err()
}

func quoteAll(cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = `"` + strings.ReplaceAll(c, `"`, `""`) + `"`
	}
	return out
}

// sqliteTimeLayouts are the ways a time may be stored as text in SQLite.
var sqliteTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05",
	"2006-01-02",
}

// convertValue turns a value read from SQLite into one for a PostgreSQL column of kind.
func convertValue(v any, kind string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch kind {
	case "boolean":
		switch b := v.(type) {
		case bool:
			return b, nil
		case int64:
			return b != 0, nil
		case string:
			return strconv.ParseBool(b)
		}
	case "timestamp with time zone", "timestamp without time zone":
		switch t := v.(type) {
		case time.Time:
			return t.UTC(), nil
		case string:
			for _, layout := range sqliteTimeLayouts {
				if p, err := time.Parse(layout, t); err == nil {
					return p.UTC(), nil
				}
			}
			return nil, fmt.Errorf("unreadable time %q", t)
		}
	case "text":
		if b, ok := v.([]byte); ok {
			return string(b), nil
		}
	}
	return v, nil
}

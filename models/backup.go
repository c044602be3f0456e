package models

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ErrBackupPostgres is returned when asked to back up a PostgreSQL database:
// PostgreSQL's own tools do that, consistently and while it runs.
var ErrBackupPostgres = errors.New("grconnect backup copies a SQLite database; on PostgreSQL use pg_dump " +
	"(for example: pg_dump --format=custom --file=grconnect.dump \"$GRCONNECT_DATABASE\"; restore with pg_restore into an empty database), " +
	"and keep the secret key with the dump")

// BackupInfo describes a backup file: the row grconnect backup writes into the
// copy's backup_info table.
type BackupInfo struct {
	TakenAt time.Time
	// KeyID is the key new values were sealed with when the backup was taken;
	// PreviousKeyIDs the previous keys configured then (during a rotation some
	// values may still be sealed with them).
	KeyID          string
	PreviousKeyIDs []string
	SchemaVersion  int
	// Version is the grconnect that took the backup.
	Version string
}

// Backup is what BackupTo wrote.
type Backup struct {
	Path string
	Size int64
	Info BackupInfo
}

// BackupTo writes a consistent copy of the SQLite database to path, which must not
// exist yet, while the database stays in use: one SELECT of every page through
// sqlite_dbpage reads one snapshot (in WAL mode, never blocked by writers and
// blocking none), written page for page into a database of its own, switched to a
// rollback journal (no -wal file to forget). A page copy is what makes a million
// connections back up in seconds: VACUUM INTO, which it replaces, rebuilt every
// table and index. The copy gets info (with the schema version filled in) in its
// backup_info table and a quick check, is synced, and only then appears under
// path (mode 0600).
func (s *Store) BackupTo(ctx context.Context, path string, info BackupInfo) (*Backup, error) {
	if s.postgres {
		return nil, ErrBackupPostgres
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%s already exists: choose another file name (a backup never overwrites)", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	v, err := s.CurrentSchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	info.SchemaVersion = v
	if info.TakenAt.IsZero() {
		info.TakenAt = Now()
	}
	// Made here, the file is private from the start.
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".partial-"+RandomToken(4))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create the backup file: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.Remove(tmp)
		}
	}()
	err = s.copyPages(ctx, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, storeError(err, "copy the database into %s", tmp)
	}
	if err := finishBackup(ctx, tmp, info); err != nil {
		return nil, fmt.Errorf("complete the backup: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return nil, err
	}
	// A link, not a rename: it fails rather than replace a file made meanwhile.
	if err := os.Link(tmp, path); err != nil {
		return nil, fmt.Errorf("put the backup in place: %w", err)
	}
	done = true
	os.Remove(tmp)
	syncDir(filepath.Dir(path))
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	return &Backup{Path: path, Size: st.Size(), Info: info}, nil
}

// copyPages writes every page of the database, as one snapshot, into f.
func (s *Store) copyPages(ctx context.Context, f *os.File) error {
	pool, err := s.readPool()
	if err != nil {
		return err
	}
	// One statement, one read transaction: BEGIN would take the write lock here
	// (the pool's connections begin their transactions IMMEDIATE).
	rows, err := pool.QueryContext(ctx, "SELECT pgno, data FROM sqlite_dbpage('main') ORDER BY pgno")
	if err != nil {
		return err
	}
	defer rows.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	var want int64 = 1
	for rows.Next() {
		var pgno int64
		// The driver's own buffer, valid until the next row: written at once, so a
		// million connections' pages are not each copied into a new slice (half
		// the copy's CPU went to those allocations).
		var data sql.RawBytes
		if err := rows.Scan(&pgno, &data); err != nil {
			return err
		}
		if pgno != want {
			return fmt.Errorf("page %d came after page %d", pgno, want-1)
		}
		want++
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return w.Flush()
}

// backupInfoTable is migration 12's backup_info, for a copy of an older schema.
const backupInfoTable = `CREATE TABLE IF NOT EXISTS backup_info (
	id INTEGER PRIMARY KEY,
	taken_at DATETIME NOT NULL,
	key_id TEXT NOT NULL,
	previous_key_ids TEXT NOT NULL DEFAULT '',
	schema_version INTEGER NOT NULL,
	grconnect_version TEXT NOT NULL DEFAULT '')`

// finishBackup writes info into a fresh copy and checks the copy.
func finishBackup(ctx context.Context, path string, info BackupInfo) error {
	db, err := sql.Open(sqlite.DriverName, "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// The pages came from a database in WAL mode: the copy is one file.
	if _, err := db.ExecContext(ctx, "PRAGMA journal_mode = DELETE"); err != nil {
		return err
	}
	// A database of an older schema has no backup_info yet: the copy gets it (its
	// migration 12 creates it only if it is missing).
	if _, err := db.ExecContext(ctx, backupInfoTable); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM backup_info"); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO backup_info (id, taken_at, key_id, previous_key_ids, schema_version, grconnect_version)
		VALUES (1, ?, ?, ?, ?, ?)`, info.TakenAt.UTC(), info.KeyID, strings.Join(info.PreviousKeyIDs, ","), info.SchemaVersion, info.Version); err != nil {
		return err
	}
	var check string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&check); err != nil {
		return err
	}
	if check != "ok" {
		return fmt.Errorf("the copy fails SQLite's quick check: %s", check)
	}
	return nil
}

// syncFile flushes a file's content to disk.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// syncDir flushes a directory entry (a rename or link) to disk, where the system allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// ReadBackupInfo returns the database's backup_info row: what grconnect backup
// recorded when it made this file. A live database (or a copy made otherwise)
// has none: ErrNotFound.
func (s *Store) ReadBackupInfo(ctx context.Context) (*BackupInfo, error) {
	var row struct {
		TakenAt          time.Time
		KeyID            string
		PreviousKeyIDs   string
		SchemaVersion    int
		GrconnectVersion string
	}
	res := s.db.WithContext(ctx).Raw(`SELECT taken_at, key_id, previous_key_ids, schema_version, grconnect_version
		FROM backup_info WHERE id = 1`).Scan(&row)
	if res.Error != nil {
		if s.tableMissing(ctx, "backup_info") {
			return nil, ErrNotFound // a database from before schema 12
		}
		return nil, storeError(res.Error, "read the backup info")
	}
	if res.RowsAffected == 0 {
		return nil, ErrNotFound
	}
	info := &BackupInfo{TakenAt: row.TakenAt.UTC(), KeyID: row.KeyID, SchemaVersion: row.SchemaVersion, Version: row.GrconnectVersion}
	if row.PreviousKeyIDs != "" {
		info.PreviousKeyIDs = strings.Split(row.PreviousKeyIDs, ",")
	}
	return info, nil
}

// ClearBackupInfo empties backup_info: a restored database is a live one again.
func (s *Store) ClearBackupInfo(ctx context.Context) error {
	return storeError(s.db.WithContext(ctx).Exec("DELETE FROM backup_info").Error, "clear the backup info")
}

func (s *Store) tableMissing(ctx context.Context, table string) bool {
	return !s.db.WithContext(ctx).Migrator().HasTable(table)
}

// OpenReadOnly opens a SQLite database file (a backup) for reading only: nothing
// is written to it, not even a journal-mode change. It does not migrate.
func OpenReadOnly(path string, log *slog.Logger) (*Store, error) {
	if strings.HasPrefix(path, "postgres://") || strings.HasPrefix(path, "postgresql://") {
		return nil, errors.New("a backup file is a SQLite database, not a postgres:// URL")
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, errors.Unwrap(err))
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("open %s: not a file", path)
	}
	db, err := gorm.Open(sqlite.Open("file:"+path+"?mode=ro&_pragma=busy_timeout(5000)&_pragma=query_only(1)"), &gorm.Config{
		TranslateError: true, NowFunc: Now,
		Logger: logger.New(slog.NewLogLogger(log.Handler(), slog.LevelWarn), logger.Config{
			SlowThreshold: 10 * time.Second, LogLevel: logger.Silent, ParameterizedQueries: true}),
	})
	if err != nil {
		return nil, fmt.Errorf("%s is not a readable SQLite database: %v", path, err)
	}
	s := &Store{db: db, health: &health{}}
	// A file that is not a database fails here, with SQLite's own words.
	var n int
	if err := db.Raw("SELECT COUNT(*) FROM sqlite_master").Scan(&n).Error; err != nil {
		s.Close()
		return nil, fmt.Errorf("%s is not a readable SQLite database: %v", path, err)
	}
	return s, nil
}

// IntegrityProblems runs SQLite's quick check (every page, every b-tree, every
// record; it leaves out comparing each index entry with its row, which at a
// million connections and a dozen indexes takes minutes instead of seconds; an
// index is derived data that REINDEX rebuilds) and its foreign-key check, and
// returns what they found; checked is false on PostgreSQL, which checks its own
// pages.
func (s *Store) IntegrityProblems(ctx context.Context) (problems []string, checked bool, err error) {
	if s.postgres {
		return nil, false, nil
	}
	var lines []string
	if err := s.db.WithContext(ctx).Raw("PRAGMA quick_check").Scan(&lines).Error; err != nil {
		return nil, true, storeError(err, "check the database's integrity")
	}
	for _, l := range lines {
		if l != "ok" {
			problems = append(problems, l)
		}
	}
	var fks []struct {
		Table  string
		Rowid  *int64
		Parent string
	}
	if err := s.db.WithContext(ctx).Raw("PRAGMA foreign_key_check").Scan(&fks).Error; err != nil {
		return problems, true, storeError(err, "check the database's foreign keys")
	}
	for _, fk := range fks {
		id := "?"
		if fk.Rowid != nil {
			id = fmt.Sprint(*fk.Rowid)
		}
		problems = append(problems, fmt.Sprintf("row %s of %s refers to a missing row of %s", id, fk.Table, fk.Parent))
	}
	return problems, true, nil
}

// SchemaStatus returns the highest applied migration and the migrations of this
// build that are not applied.
func (s *Store) SchemaStatus(ctx context.Context) (current int, pending []string, err error) {
	var applied []int
	if err := s.db.WithContext(ctx).Raw("SELECT version FROM schema_migrations").Scan(&applied).Error; err != nil {
		if s.tableMissing(ctx, "schema_migrations") {
			return 0, nil, errors.New("this is not a grconnect database (no schema_migrations table)")
		}
		return 0, nil, storeError(err, "read the schema versions")
	}
	have := map[int]bool{}
	for _, v := range applied {
		have[v] = true
		current = max(current, v)
	}
	for _, m := range migrations {
		if !have[m.version] {
			pending = append(pending, fmt.Sprintf("%d (%s)", m.version, m.name))
		}
	}
	return current, pending, nil
}

// TableRows is how many rows one table holds.
type TableRows struct {
	Table string
	Rows  int64
}

// CountRows counts the rows of every table an install's data lives in.
func (s *Store) CountRows(ctx context.Context) ([]TableRows, error) {
	out := make([]TableRows, 0, len(copyTables))
	for _, t := range copyTables {
		if t == "schema_migrations" {
			continue
		}
		var n int64
		if err := s.db.WithContext(ctx).Raw("SELECT COUNT(*) FROM " + t).Scan(&n).Error; err != nil {
			if s.tableMissing(ctx, t) {
				continue // a backup from an older schema
			}
			return out, storeError(err, "count the rows of %s", t)
		}
		out = append(out, TableRows{Table: t, Rows: n})
	}
	return out, nil
}

package services

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// ErrDatabaseInUse is returned when restore would replace a database a process has open.
var ErrDatabaseInUse = errors.New("a running grconnect (or another program) has the database open: stop it first; restore never replaces a database in use")

// BackupCheck is what CheckBackup found in a backup file.
type BackupCheck struct {
	// Info is the backup's own description; nil for a copy not made by grconnect backup.
	Info          *models.BackupInfo
	SchemaVersion int
	// SealedWith is the key the backup's key check was sealed with ("" when it
	// holds nothing sealed).
	SealedWith string
}

// CheckBackup opens a backup read-only and makes sure it can be restored with box:
// a sound SQLite file, a schema this grconnect understands, and a key that opens
// what it holds. The errors say what to do.
func CheckBackup(ctx context.Context, from string, box *secrets.Box, log *slog.Logger) (*BackupCheck, error) {
	src, err := models.OpenReadOnly(from, log)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	c := &BackupCheck{}
	if c.SchemaVersion, _, err = src.SchemaStatus(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	if c.SchemaVersion > models.SchemaVersion() {
		return nil, &models.SchemaTooNewError{Database: c.SchemaVersion, Binary: models.SchemaVersion()}
	}
	if info, err := src.ReadBackupInfo(ctx); err == nil {
		c.Info = info
	} else if !errors.Is(err, models.ErrNotFound) {
		return nil, err
	}
	problems, _, err := src.IntegrityProblems(ctx)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		if len(problems) > 3 {
			problems = append(problems[:3], fmt.Sprintf("and %d more", len(problems)-3))
		}
		return nil, fmt.Errorf("%s fails SQLite's integrity check (%s): it cannot be restored; take another backup", from, strings.Join(problems, "; "))
	}
	keyID, opens, err := KeyProbe(ctx, src, box)
	if err != nil {
		return nil, err
	}
	c.SealedWith = keyID
	if !opens {
		taken := "its values are sealed with key ID " + keyID
		if c.Info != nil {
			taken = "it was taken with key ID " + describeKeys(c.Info.KeyID, c.Info.PreviousKeyIDs)
		}
		return nil, fmt.Errorf("invalid GRCONNECT_SECRET_KEY (--secret-key): the configured key (key ID %s) does not open this backup: %s. "+
			"Restore with that key (GRCONNECT_SECRET_KEY, or its secret.key beside the database)", describeKeys(box.KeyID(), box.PreviousKeyIDs()), taken)
	}
	return c, nil
}

// RestoreReport is what Restore did.
type RestoreReport struct {
	Check *BackupCheck
	// MovedAside are the files of the database that was replaced, under new names.
	MovedAside []string
	// Migrated counts the migrations applied to the restored database.
	Migrated int
	Rows     []models.TableRows
}

// Restore replaces the SQLite database at to with the backup at from, after
// CheckBackup: never while a process has the database open, never losing the
// database it replaces (its files are renamed to "<name>.before-restore-<time>"),
// and never leaving a half-written file in place (the copy is synced, then renamed
// over). The restored database is migrated to this build's schema, its key checked
// and the restore recorded in its audit log.
func Restore(ctx context.Context, from, to string, box *secrets.Box, log *slog.Logger) (*RestoreReport, error) {
	absFrom, _ := filepath.Abs(from)
	absTo, _ := filepath.Abs(to)
	if absFrom == absTo {
		return nil, errors.New("the backup and the database to restore into are the same file")
	}
	// Before this process opens the database in any way (see models.DatabaseInUse).
	if inUse, err := models.DatabaseInUse(to); err != nil {
		return nil, fmt.Errorf("cannot tell whether %s is in use: %w", to, err)
	} else if inUse {
		return nil, fmt.Errorf("%s: %w", to, ErrDatabaseInUse)
	}
	check, err := CheckBackup(ctx, from, box, log)
	if err != nil {
		return nil, err
	}
	rep := &RestoreReport{Check: check}
	tmp, err := copyToTemp(ctx, from, filepath.Dir(to), "."+filepath.Base(to)+".restore-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp) // gone already once renamed into place
	if inUse, err := models.DatabaseInUse(to); err != nil || inUse {
		return nil, fmt.Errorf("%s: %w", to, ErrDatabaseInUse) // started meanwhile
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		old := to + suffix
		if _, err := os.Lstat(old); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if suffix == "-shm" {
			os.Remove(old) // an index of the -wal file, rebuilt from it
			continue
		}
		aside := to + ".before-restore-" + stamp + suffix
		if err := os.Rename(old, aside); err != nil {
			return nil, fmt.Errorf("move the current database aside: %w", err)
		}
		rep.MovedAside = append(rep.MovedAside, aside)
	}
	if err := os.Rename(tmp, to); err != nil {
		return nil, fmt.Errorf("put the restored database in place (the previous one is at %s): %w", strings.Join(rep.MovedAside, ", "), err)
	}
	syncDir(filepath.Dir(to))

	store, err := models.Open(to, log)
	if err != nil {
		return rep, err
	}
	defer store.Close()
	if rep.Migrated, err = store.Migrate(ctx); err != nil {
		return rep, fmt.Errorf("migrate the restored database: %w", err)
	}
	if err := CheckKey(ctx, store, box); err != nil {
		return rep, err
	}
	if err := store.ClearBackupInfo(ctx); err != nil {
		return rep, err
	}
	details := "Database restored from " + absFrom
	if check.Info != nil {
		details += fmt.Sprintf(" (backup taken %s with key ID %s by grconnect %s)", check.Info.TakenAt.Format(time.RFC3339), check.Info.KeyID, check.Info.Version)
	}
	if len(rep.MovedAside) > 0 {
		details += "; the previous database was kept as " + rep.MovedAside[0]
	}
	if err := store.RecordAction(ctx, models.AuditRestored, TargetInstall, "", details); err != nil {
		return rep, err
	}
	rep.Rows, err = store.CountRows(ctx)
	return rep, err
}

// copyToTemp copies a file into dir under a new private name (prefix + random),
// synced, and returns its path.
func copyToTemp(ctx context.Context, from, dir, prefix string) (string, error) {
	src, err := os.Open(from)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.CreateTemp(dir, prefix+"*")
	if err != nil {
		return "", fmt.Errorf("copy the backup next to the database: %w", err)
	}
	ok := false
	defer func() {
		dst.Close()
		if !ok {
			os.Remove(dst.Name())
		}
	}()
	if err := dst.Chmod(0o600); err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, readerWithContext{ctx, src}); err != nil {
		return "", fmt.Errorf("copy the backup next to the database: %w", err)
	}
	if err := dst.Sync(); err != nil {
		return "", err
	}
	ok = true
	return dst.Name(), nil
}

// readerWithContext stops a copy when ctx ends.
type readerWithContext struct {
	ctx context.Context
	r   io.Reader
}

func (r readerWithContext) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// syncDir flushes a directory entry (a rename) to disk, where the system allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/infra/buildinfo"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// Backup writes a consistent copy of the (SQLite) database to path while it stays
// in use, recording which keys sealed its values (see models.Store.BackupTo), and
// records it in the audit log when someone asked for it (unless the database is at
// an older schema, which this grconnect has not migrated and never writes to).
func Backup(ctx context.Context, store *models.Store, box *secrets.Box, path string) (*models.Backup, time.Duration, error) {
	start := time.Now()
	b, err := store.BackupTo(ctx, path, models.BackupInfo{
		KeyID: box.KeyID(), PreviousKeyIDs: box.PreviousKeyIDs(), Version: buildinfo.Get().Version,
	})
	if err != nil {
		return nil, 0, err
	}
	took := time.Since(start)
	if v, err := store.CurrentSchemaVersion(ctx); err == nil && v < models.SchemaVersion() {
		return b, took, nil // an older install, backed up before an upgrade: it has no audit log yet
	}
	details := fmt.Sprintf("Backup written to %s (%s, sealed with key ID %s, took %s)", b.Path, FormatBytes(b.Size), b.Info.KeyID, took.Round(time.Millisecond))
	if err := RecordAudit(ctx, store, models.AuditBackupCreated, TargetInstall, "", details); err != nil {
		return b, took, fmt.Errorf("the backup is complete, but the audit log refused its entry: %w", err)
	}
	return b, took, nil
}

// FormatBytes says a size in bytes, KiB, MiB or GiB.
func FormatBytes(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

// backupPrefix, backupSuffix and backupTimeLayout name scheduled backups:
// grconnect-20260102T030405Z.db, newest last in name order.
const (
	backupPrefix     = "grconnect-"
	backupSuffix     = ".db"
	backupTimeLayout = "20060102T150405Z"
)

// manualPrefix names the backups made by hand ("Back up now"):
// grconnect-manual-20260102T030405Z.db. They are kept apart from the scheduled
// ones: pruning each keeps its own newest Keep, so clicks never delete the
// scheduled history.
const manualPrefix = backupPrefix + "manual-"

// ManualBackupEvery is the least time between two backups made by hand.
const ManualBackupEvery = time.Minute

// ErrBackupRunning is returned when a backup is asked for while one is being made.
var ErrBackupRunning = errors.New("a backup is being made right now; try again when it is done")

// BackupTooSoonError is returned for a backup by hand asked for within
// ManualBackupEvery of the last one.
type BackupTooSoonError struct {
	// Last is when the last backup by hand started; another may start at Next.
	Last, Next time.Time
}

func (e *BackupTooSoonError) Error() string {
	return "a backup was made by hand less than a minute ago; the next one can be made from " + e.Next.UTC().Format("15:04:05 UTC")
}

// BackupObserver is told about each scheduled backup (the metrics), and at start
// about the newest one already in the directory.
type BackupObserver interface {
	ObserveBackup(at time.Time, size int64, took time.Duration, err error)
	KnownBackup(at time.Time, size int64)
}

// Backups makes scheduled backups into a directory (GRCONNECT_BACKUP_DIR) every
// Every, keeping the newest Keep, and tells the operator page how they went.
type Backups struct {
	store *models.Store
	box   *secrets.Box
	log   *slog.Logger
	// Dir is where the backups go; "" turns scheduled backups off.
	Dir   string
	Every time.Duration
	Keep  int
	// Observer, when set, is told about every scheduled backup.
	Observer BackupObserver
	// Now is the clock; tests replace it.
	Now func() time.Time

	mu         sync.Mutex
	running    bool
	last       *BackupFile // the last backup this process made
	failed     *BackupFailure
	next       time.Time
	lastManual time.Time // when the last backup by hand started
}

// BackupFile is one backup in the directory.
type BackupFile struct {
	Name string
	Path string
	At   time.Time
	Size int64
	Took time.Duration // 0 when not made by this process
	// Manual: made by hand ("Back up now"), not by the schedule.
	Manual bool
}

// BackupFailure is the last scheduled backup that failed.
type BackupFailure struct {
	At    time.Time
	Error string
}

// NewBackups returns the scheduler; with an empty dir it does nothing.
func NewBackups(store *models.Store, box *secrets.Box, dir string, every time.Duration, keep int, log *slog.Logger) *Backups {
	return &Backups{store: store, box: box, log: log, Dir: dir, Every: every, Keep: keep, Now: models.Now}
}

// Enabled reports whether scheduled backups are on.
func (b *Backups) Enabled() bool { return b != nil && b.Dir != "" && !b.store.IsPostgres() }

// Run makes a backup whenever the newest one in the directory is Every old (a
// minute after start at the earliest, so a restarting server settles first), until
// ctx ends. A failure is retried after ten minutes (or Every, if shorter).
func (b *Backups) Run(ctx context.Context) {
	if !b.Enabled() {
		return
	}
	next := b.Now().Add(time.Minute)
	if files, err := b.Files(); err == nil && len(files) > 0 {
		if due := files[0].At.Add(b.Every); due.After(next) {
			next = due
		}
		if b.Observer != nil {
			b.Observer.KnownBackup(files[0].At, files[0].Size)
		}
	}
	for {
		b.setNext(next)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		if _, err := b.RunOnce(ctx); err != nil && ctx.Err() == nil {
			next = b.Now().Add(min(10*time.Minute, b.Every))
			continue
		}
		next = b.Now().Add(b.Every)
	}
}

func (b *Backups) setNext(t time.Time) {
	b.mu.Lock()
	b.next = t
	b.mu.Unlock()
}

// RunOnce makes a scheduled backup into the directory now and deletes the
// scheduled ones beyond Keep.
func (b *Backups) RunOnce(ctx context.Context) (*BackupFile, error) {
	return b.run(ctx, false)
}

// RunManual makes a backup by hand ("Back up now", recorded in the audit log with
// ctx's actor): at most one every ManualBackupEvery (else *BackupTooSoonError),
// named apart from the scheduled ones and pruned apart from them, and not counted
// in the scheduled backups' figures.
func (b *Backups) RunManual(ctx context.Context) (*BackupFile, error) {
	if !b.Enabled() {
		return nil, errors.New("scheduled backups are off: set GRCONNECT_BACKUP_DIR")
	}
	b.mu.Lock()
	now := b.Now()
	if !b.lastManual.IsZero() && now.Sub(b.lastManual) < ManualBackupEvery {
		last := b.lastManual
		b.mu.Unlock()
		return nil, &BackupTooSoonError{Last: last, Next: last.Add(ManualBackupEvery)}
	}
	previous := b.lastManual
	b.lastManual = now // reserved: parallel clicks see it
	b.mu.Unlock()
	f, err := b.run(ctx, true)
	if f == nil {
		// Nothing was made (a backup was running, or it failed): the click does not count.
		b.mu.Lock()
		if b.lastManual.Equal(now) {
			b.lastManual = previous
		}
		b.mu.Unlock()
	}
	return f, err
}

// run makes one backup, scheduled or by hand, and prunes its kind.
func (b *Backups) run(ctx context.Context, manual bool) (*BackupFile, error) {
	if !b.Enabled() {
		return nil, errors.New("scheduled backups are off: set GRCONNECT_BACKUP_DIR")
	}
	b.mu.Lock()
	if b.running {
		b.mu.Unlock()
		return nil, ErrBackupRunning
	}
	b.running = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.running = false
		b.mu.Unlock()
	}()

	at := b.Now()
	prefix := backupPrefix
	if manual {
		prefix = manualPrefix
	}
	name := prefix + at.UTC().Format(backupTimeLayout) + backupSuffix
	made, took, err := Backup(ctx, b.store, b.box, filepath.Join(b.Dir, name))
	if b.Observer != nil && !manual {
		var size int64
		if made != nil {
			size = made.Size
		}
		b.Observer.ObserveBackup(at, size, took, err)
	}
	b.mu.Lock()
	if err != nil && made == nil {
		if !manual {
			b.failed = &BackupFailure{At: at, Error: err.Error()}
		}
		b.mu.Unlock()
		b.log.Error("backup failed", "dir", b.Dir, "by_hand", manual, "error", err)
		return nil, err
	}
	f := &BackupFile{Name: name, Path: made.Path, At: at, Size: made.Size, Took: took, Manual: manual}
	if !manual {
		b.last, b.failed = f, nil
	}
	b.mu.Unlock()
	b.log.Info("backup made", "path", made.Path, "bytes", made.Size, "took", took.Round(time.Millisecond), "by_hand", manual)
	if pruned, perr := b.prune(manual); perr != nil {
		b.log.Warn("could not delete old backups", "dir", b.Dir, "error", perr)
	} else if len(pruned) > 0 {
		b.log.Info("old backups deleted", "files", pruned)
	}
	return f, err
}

// Files lists the scheduled backups in the directory, newest first.
func (b *Backups) Files() ([]BackupFile, error) { return b.files(false) }

// ManualFiles lists the backups made by hand in the directory, newest first.
func (b *Backups) ManualFiles() ([]BackupFile, error) { return b.files(true) }

func (b *Backups) files(manual bool) ([]BackupFile, error) {
	entries, err := os.ReadDir(b.Dir)
	if err != nil {
		return nil, err
	}
	prefix := backupPrefix
	if manual {
		prefix = manualPrefix
	}
	var out []BackupFile
	for _, e := range entries {
		stamp, ok := strings.CutPrefix(e.Name(), prefix)
		stamp, ok2 := strings.CutSuffix(stamp, backupSuffix)
		if !ok || !ok2 || !e.Type().IsRegular() {
			continue
		}
		at, err := time.Parse(backupTimeLayout, stamp)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, BackupFile{Name: e.Name(), Path: filepath.Join(b.Dir, e.Name()), At: at, Size: info.Size(), Manual: manual})
	}
	slices.SortFunc(out, func(x, y BackupFile) int { return y.At.Compare(x.At) })
	return out, nil
}

// prune deletes the backups of one kind (scheduled, or by hand) beyond Keep (only
// files named like them) and partial copies an interrupted backup left over an
// hour ago.
func (b *Backups) prune(manual bool) ([]string, error) {
	files, err := b.files(manual)
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, f := range files[min(len(files), max(b.Keep, 1)):] {
		if err := os.Remove(f.Path); err != nil {
			return deleted, err
		}
		deleted = append(deleted, f.Name)
	}
	entries, err := os.ReadDir(b.Dir)
	if err != nil {
		return deleted, err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "."+backupPrefix) || !strings.Contains(e.Name(), ".partial-") {
			continue
		}
		if info, err := e.Info(); err == nil && b.Now().Sub(info.ModTime()) > time.Hour {
			os.Remove(filepath.Join(b.Dir, e.Name()))
		}
	}
	return deleted, nil
}

// BackupStatus is what the operator page shows of the backups.
type BackupStatus struct {
	Enabled  bool
	Postgres bool
	Dir      string
	Every    time.Duration
	Keep     int
	Running  bool
	Next     time.Time // zero until the scheduler runs
	// Latest is the newest backup in the directory (this process's, or an earlier one's).
	Latest *BackupFile
	Failed *BackupFailure
	Files  []BackupFile
	// Manual are the backups made by hand, newest first.
	Manual []BackupFile
	// FilesError says why the directory could not be listed.
	FilesError string
}

// Status returns the backups' state for the operator page.
func (b *Backups) Status() BackupStatus {
	st := BackupStatus{Enabled: b.Enabled(), Postgres: b.store.IsPostgres(), Dir: b.Dir, Every: b.Every, Keep: b.Keep}
	if !st.Enabled {
		return st
	}
	b.mu.Lock()
	st.Running, st.Next, st.Failed = b.running, b.next, b.failed
	last := b.last
	b.mu.Unlock()
	files, err := b.Files()
	if err != nil {
		st.FilesError = err.Error()
	}
	st.Files = files
	st.Manual, _ = b.ManualFiles()
	if len(files) > 0 {
		latest := files[0]
		if last != nil && last.Name == latest.Name {
			latest.Took = last.Took
		}
		st.Latest = &latest
	}
	return st
}

package cli

// The commands that keep an install running for years: backup, restore, verify,
// version and healthcheck (see README: Backups, Releases; docs/deploy.md).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/infra/buildinfo"
	"github.com/grconnect/grconnect/services/infra/config"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// backup writes a consistent copy of the configured SQLite database (in use or
// not) to --to, with the key's ID recorded in it. It never migrates the database:
// a newer grconnect may back up an older server's database before upgrading it
// (and then writes nothing to it: no key check, no audit entry).
func backup(ctx context.Context, inv *invocation) error {
	fs, loader := inv.flags()
	to := fs.String("to", "", "the backup file to write (it must not exist)")
	if err := inv.parse(fs); err != nil {
		return err
	}
	if strings.TrimSpace(*to) == "" || fs.NArg() > 0 {
		return errors.New("usage: grconnect backup --to FILE")
	}
	cfg, err := loader.Load()
	if err != nil {
		return err
	}
	if cfg.IsPostgres() {
		return models.ErrBackupPostgres
	}
	log := inv.logger(slog.LevelWarn)
	store, err := openExisting(cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	version, err := store.CurrentSchemaVersion(ctx)
	if err != nil {
		return err
	}
	var box *secrets.Box
	if version < models.SchemaVersion() {
		// An older server's database, backed up before this grconnect upgrades it:
		// its key check and audit log may not exist yet, so nothing is written to it.
		box, err = existingKey(cfg)
	} else {
		box, err = openKey(ctx, cfg, store, log)
	}
	if err != nil {
		return err
	}
	b, took, err := services.Backup(ctx, store, box, *to)
	if b == nil {
		return err
	}
	fmt.Fprintf(inv.stdout, "backup written: %s (%s in %s), schema version %d\n", b.Path, services.FormatBytes(b.Size), took.Round(time.Millisecond), b.Info.SchemaVersion)
	fmt.Fprintf(inv.stdout, "its secrets are sealed with key ID %s%s: keep that key apart from the backup; without it the backup is useless.\n",
		b.Info.KeyID, previousKeys(b.Info.PreviousKeyIDs))
	fmt.Fprintf(inv.stdout, "check it with: grconnect verify --from %s\n", b.Path)
	return err
}

// openExisting opens the configured SQLite database without creating or migrating it.
func openExisting(cfg *config.Config, log *slog.Logger) (*models.Store, error) {
	if !cfg.IsPostgres() {
		if _, err := os.Stat(cfg.Database); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("invalid GRCONNECT_DATABASE (--database): there is no database at %s", cfg.Database)
		}
	}
	store, err := models.Open(cfg.Database, log)
	if err != nil {
		return nil, fmt.Errorf("invalid GRCONNECT_DATABASE (--database): %v", err)
	}
	return store, nil
}

// existingKey opens the configured key without making one or checking it against
// the database: it refuses when no key is configured and secret.key is missing.
func existingKey(cfg *config.Config) (*secrets.Box, error) {
	if missing, err := cfg.KeyFileMissing(); err != nil {
		return nil, err
	} else if missing {
		return nil, fmt.Errorf("invalid GRCONNECT_SECRET_KEY (--secret-key): no key is configured and %s does not exist", cfg.KeyFile())
	}
	if _, _, err := cfg.LoadSecretKey(); err != nil {
		return nil, err
	}
	box, err := secrets.New(cfg.SecretKey, cfg.PreviousSecretKeys...)
	if err != nil {
		return nil, fmt.Errorf("invalid GRCONNECT_SECRET_KEY (--secret-key): %v", err)
	}
	return box, nil
}

func previousKeys(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return " (previous keys still configured then: " + strings.Join(ids, ", ") + ")"
}

// restore replaces the configured SQLite database with a backup: only while no
// grconnect has it open, keeping the replaced database beside it, and only with
// the key that opens the backup.
func restore(ctx context.Context, inv *invocation) error {
	fs, loader := inv.flags()
	from := fs.String("from", "", "the backup file to restore")
	if err := inv.parse(fs); err != nil {
		return err
	}
	if strings.TrimSpace(*from) == "" || fs.NArg() > 0 {
		return errors.New("usage: grconnect restore --from FILE (into GRCONNECT_DATABASE, with grconnect stopped)")
	}
	cfg, err := loader.Load()
	if err != nil {
		return err
	}
	if cfg.IsPostgres() {
		return errors.New("grconnect restore replaces a SQLite database; on PostgreSQL restore a pg_dump with pg_restore into an empty database")
	}
	log := inv.logger(slog.LevelWarn)
	if err := cfg.PrepareDataDir(); err != nil {
		return err
	}
	// Never a new key: a backup opens only with the key it was made with.
	if missing, err := cfg.KeyFileMissing(); err != nil {
		return err
	} else if missing {
		return fmt.Errorf("invalid GRCONNECT_SECRET_KEY (--secret-key): no key is configured and %s does not exist; %s: put that key in %s or set GRCONNECT_SECRET_KEY",
			cfg.KeyFile(), backupKeyText(ctx, *from, log), cfg.KeyFile())
	}
	box, err := existingKey(cfg)
	if err != nil {
		return err
	}
	rep, err := services.Restore(ctx, *from, cfg.Database, box, log)
	if rep != nil && len(rep.MovedAside) > 0 {
		fmt.Fprintf(inv.stdout, "the database that was there is kept as %s\n", strings.Join(rep.MovedAside, " and "))
	}
	if err != nil {
		return err
	}
	if info := rep.Check.Info; info != nil {
		fmt.Fprintf(inv.stdout, "restored %s into %s: backup taken %s by grconnect %s, sealed with key ID %s\n",
			*from, cfg.Database, info.TakenAt.Format(time.RFC3339), info.Version, info.KeyID)
	} else {
		fmt.Fprintf(inv.stdout, "restored %s into %s (a copy not made by grconnect backup)\n", *from, cfg.Database)
	}
	if rep.Migrated > 0 {
		fmt.Fprintf(inv.stdout, "applied %d migrations: schema version %d\n", rep.Migrated, models.SchemaVersion())
	}
	printRows(inv, rep.Rows)
	fmt.Fprintln(inv.stdout, "Start grconnect with the same key. Tokens refreshed after the backup was taken may have been rotated by GetResponse since: such connections show \"needs reconnect\".")
	return nil
}

// backupKeyText says which key a backup needs, as far as it can tell.
func backupKeyText(ctx context.Context, from string, log *slog.Logger) string {
	src, err := models.OpenReadOnly(from, log)
	if err != nil {
		return "the backup cannot be read (" + err.Error() + ")"
	}
	defer src.Close()
	if info, err := src.ReadBackupInfo(ctx); err == nil {
		return "the backup was taken with key ID " + info.KeyID
	}
	if sealed, err := src.InstallSecret(ctx, "key_check"); err == nil {
		return "the backup's values are sealed with key ID " + secrets.SealedKeyID(sealed)
	}
	return "the backup needs the key its data was sealed with"
}

func printRows(inv *invocation, rows []models.TableRows) {
	tw := tabwriter.NewWriter(inv.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\trows\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t\n", r.Table, r.Rows)
	}
	tw.Flush()
}

// verify checks the configured database, or a backup (--from, opened read-only):
// schema, SQLite's integrity, every sealed value against the configured keys, and
// the row counts. Problems make it fail.
func verify(ctx context.Context, inv *invocation) error {
	fs, loader := inv.flags()
	from := fs.String("from", "", "a backup file to check instead of the configured database (opened read-only)")
	if err := inv.parse(fs); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("usage: grconnect verify [--from FILE]")
	}
	cfg, err := loader.Load()
	if err != nil {
		return err
	}
	log := inv.logger(slog.LevelWarn)
	var store *models.Store
	what := cfg.Database
	if *from != "" {
		what = *from
		store, err = models.OpenReadOnly(*from, log)
	} else {
		store, err = openExisting(cfg, log)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	if cfg.IsPostgres() && *from == "" {
		what = "the PostgreSQL database"
	}
	var box *secrets.Box
	if missing, err := cfg.KeyFileMissing(); err != nil {
		return err
	} else if !missing {
		if box, err = existingKey(cfg); err != nil {
			return err
		}
	}
	rep, err := services.Verify(ctx, store, box)
	if err != nil {
		return err
	}
	printVerify(inv, what, rep)
	if n := len(rep.Problems); n > 0 {
		return fmt.Errorf("verify found %d problem%s in %s (listed above)", n, map[bool]string{true: "", false: "s"}[n == 1], what)
	}
	fmt.Fprintln(inv.stdout, "OK: the schema is sound, the database passes its integrity check, and every stored secret opens with the configured key.")
	return nil
}

func printVerify(inv *invocation, what string, r *services.VerifyReport) {
	out := inv.stdout
	fmt.Fprintf(out, "database:   %s\n", what)
	if b := r.Backup; b != nil {
		fmt.Fprintf(out, "backup:     taken %s by grconnect %s with key ID %s%s\n", b.TakenAt.Format(time.RFC3339), b.Version, b.KeyID, previousKeys(b.PreviousKeyIDs))
	}
	fmt.Fprintf(out, "schema:     version %d (this grconnect: %d)\n", r.SchemaVersion, models.SchemaVersion())
	switch {
	case !r.IntegrityChecked:
		fmt.Fprintln(out, "integrity:  not checked (PostgreSQL checks its own pages)")
	case len(r.Integrity) == 0:
		fmt.Fprintln(out, "integrity:  ok")
	default:
		fmt.Fprintf(out, "integrity:  %d problems\n", len(r.Integrity))
	}
	if r.KeyID != "" {
		fmt.Fprintf(out, "key:        key ID %s%s\n", r.KeyID, previousKeys(r.PreviousKeyIDs))
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "table\tfield\topened\tempty\tunknown key\tdamaged\t")
		for _, c := range r.Sealed {
			unknown := 0
			for _, n := range c.UnknownKey {
				unknown += n
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t\n", c.Table, c.Field, c.Opened, c.Empty, unknown, c.Damaged)
		}
		tw.Flush()
	} else {
		fmt.Fprintln(out, "key:        none configured")
	}
	printRows(inv, r.Rows)
	for _, n := range r.Notes {
		fmt.Fprintln(out, "note: "+n)
	}
	for _, p := range r.Problems {
		fmt.Fprintln(out, "PROBLEM: "+p)
	}
}

// printVersion prints the version, commit, build date and Go version.
func printVersion(_ context.Context, inv *invocation) error {
	if len(inv.args) > 0 && inv.args[0] != "-h" && inv.args[0] != "--help" {
		return errors.New("usage: grconnect version")
	}
	fmt.Fprint(inv.stdout, buildinfo.Get().String())
	return nil
}

// healthcheck asks the grconnect running on this machine whether it is ready
// (GET /readyz on GRCONNECT_ADDR's port) and fails unless it is: a container's
// HEALTHCHECK, where there is no curl.
func healthcheck(ctx context.Context, inv *invocation) error {
	fs, loader := inv.flags()
	target := fs.String("url", "", "the readiness URL (default: http://127.0.0.1:<port of GRCONNECT_ADDR>/readyz)")
	if err := inv.parse(fs); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("usage: grconnect healthcheck [--url URL]")
	}
	u := *target
	if u == "" {
		cfg, err := loader.Load()
		if err != nil {
			return err
		}
		host, port, _ := net.SplitHostPort(cfg.Addr)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		u = "http://" + net.JoinHostPort(host, port) + "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("invalid --url: %v", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s %s", res.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(inv.stdout, "ready")
	return nil
}

package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// TestBackupVerifyRestoreCommands goes through the commands an operator runs: a
// backup of an install, its verification (with the right key, a wrong one, and
// after a row was damaged), a restore into a fresh data directory, and the
// command line's changes in the audit log under "cli".
func TestBackupVerifyRestoreCommands(t *testing.T) {
	modelstest.SkipOnPostgres(t, "grconnect backup copies SQLite")
	env, dbPath := dbEnv(t)
	env["GRCONNECT_SECRET_KEY"] = keyText(1)
	if r := runCmd(t, env, "a long password 1\n", "operator", "create", "--email", "ann@example.com", "--password-stdin"); r.err != nil {
		t.Fatal(r.err)
	}
	r := runCmd(t, env, "client-secret-1\n", "app", "create", "--name", "Acme", "--client-id", "acme", "--client-secret-stdin")
	if r.err != nil {
		t.Fatal(r.err)
	}
	appID := strings.TrimSpace(r.stdout)
	if r := runCmd(t, env, "", "apikey", "create", "--name", "billing"); r.err != nil {
		t.Fatal(r.err)
	}
	box, _ := secrets.New(bytes.Repeat([]byte{1}, secrets.KeySize))
	store := openStore(t, dbPath)
	for i := range 4 {
		id := models.NewID("con")
		c := &models.Connection{ID: id, AppID: appID, AccountID: "acc" + itoa(i), Status: models.StatusActive, ConnectedAt: models.Now()}
		c.AccessTokenEnc, _ = box.Seal("access-"+id, secrets.AAD("connection", id, "access_token"))
		c.RefreshTokenEnc, _ = box.Seal("refresh-"+id, secrets.AAD("connection", id, "refresh_token"))
		if err := store.DB().Create(c).Error; err != nil {
			t.Fatal(err)
		}
	}

	backup := filepath.Join(t.TempDir(), "nightly.db")
	r = runCmd(t, env, "", "backup", "--to", backup)
	if r.err != nil {
		t.Fatalf("backup: %v\n%s", r.err, r.stderr)
	}
	for _, want := range []string{"backup written: " + backup, "sealed with key ID " + box.KeyID(), "grconnect verify --from " + backup} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("backup output lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := runCmd(t, env, "", "backup", "--to", backup); r.err == nil || !strings.Contains(r.err.Error(), "already exists") {
		t.Errorf("a second backup to the same file: %v", r.err)
	}

	r = runCmd(t, env, "", "verify", "--from", backup)
	if r.err != nil {
		t.Fatalf("verify: %v\n%s", r.err, r.stdout)
	}
	for _, want := range []string{"backup:     taken ", "with key ID " + box.KeyID(), "integrity:  ok", "OK: "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("verify output lacks %q:\n%s", want, r.stdout)
		}
	}
	// A wrong key: every sealed value is named with the key it needs.
	wrongEnv := map[string]string{"GRCONNECT_DATABASE": dbPath, "GRCONNECT_SECRET_KEY": keyText(2)}
	r = runCmd(t, wrongEnv, "", "verify", "--from", backup)
	wrong, _ := secrets.New(bytes.Repeat([]byte{2}, secrets.KeySize))
	if r.err == nil || !strings.Contains(r.stdout, "PROBLEM: keys: 10 sealed values were sealed with a key that is not configured (10 with key ID "+box.KeyID()+")") ||
		!strings.Contains(r.stdout, "the configured key is "+wrong.KeyID()) || !strings.Contains(r.stdout, "the backup was taken with key ID "+box.KeyID()) {
		t.Errorf("verify with a wrong key: %v\n%s", r.err, r.stdout)
	}
	// A damaged row of the live database.
	var victim models.Connection
	store.DB().Order("id").First(&victim)
	store.DB().Exec("UPDATE connections SET refresh_token_enc = ? WHERE id = ?", victim.RefreshTokenEnc[:len(victim.RefreshTokenEnc)-6], victim.ID)
	r = runCmd(t, env, "", "verify")
	if r.err == nil || !strings.Contains(r.stdout, "PROBLEM: damaged: 1 connections refresh_token values do not open") || !strings.Contains(r.stdout, victim.ID) {
		t.Errorf("verify of a damaged row: %v\n%s", r.err, r.stdout)
	}

	// Restore into a fresh data directory: without the key it says which one it needs.
	freshEnv, freshPath := dbEnv(t)
	r = runCmd(t, freshEnv, "", "restore", "--from", backup)
	if r.err == nil || !strings.Contains(r.err.Error(), "the backup was taken with key ID "+box.KeyID()) || strings.Contains(r.err.Error(), "\n") {
		t.Errorf("restore without a key: %v", r.err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(freshPath), "secret.key")); err == nil {
		t.Error("restore made a new key")
	}
	freshEnv["GRCONNECT_SECRET_KEY"] = keyText(1)
	r = runCmd(t, freshEnv, "", "restore", "--from", backup)
	if r.err != nil {
		t.Fatalf("restore: %v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(r.stdout, "restored "+backup) || !strings.Contains(r.stdout, "connections") {
		t.Errorf("restore output:\n%s", r.stdout)
	}
	if r := runCmd(t, freshEnv, "", "verify"); r.err != nil {
		t.Errorf("verify after restoring: %v\n%s", r.err, r.stdout)
	}
	if r := runCmd(t, freshEnv, "", "rekey"); r.err != nil {
		t.Fatalf("rekey: %v", r.err)
	}
	restored := openStore(t, freshPath)
	actions := map[models.AuditAction]int{}
	var entries []models.AuditEntry
	restored.DB().Find(&entries)
	for _, e := range entries {
		if e.Actor != "cli" || e.IP != "" {
			t.Errorf("%s recorded as %q from %q", e.Action, e.Actor, e.IP)
		}
		actions[e.Action]++
	}
	// The backup holds the three creations; its backup entry went into the source
	// (after the copy); the restore and the rekey are the restored database's own.
	for a, n := range map[models.AuditAction]int{models.AuditOperatorCreated: 1, models.AuditAppCreated: 1, models.AuditAPIKeyCreated: 1,
		models.AuditRestored: 1, models.AuditRekeyed: 1, models.AuditBackupCreated: 0} {
		if actions[a] != n {
			t.Errorf("%s: %d entries in the restored database, want %d", a, actions[a], n)
		}
	}
	var n int64
	store.DB().Model(&models.AuditEntry{}).Where("action = ? AND actor = 'cli'", models.AuditBackupCreated).Count(&n)
	if n != 1 {
		t.Errorf("%d backup entries in the source, want 1", n)
	}
}

func TestBackupCommandUsageAndPostgres(t *testing.T) {
	env, _ := dbEnv(t)
	for _, args := range [][]string{{"backup"}, {"backup", "--to", "x.db", "extra"}, {"restore"}, {"verify", "extra"}} {
		if r := runCmd(t, env, "", args...); r.err == nil || !strings.Contains(r.err.Error(), "usage") {
			t.Errorf("%q = %v, want a usage error", args, r.err)
		}
	}
	if r := runCmd(t, env, "", "backup", "--to", filepath.Join(t.TempDir(), "x.db")); r.err == nil || !strings.Contains(r.err.Error(), "there is no database") {
		t.Errorf("backup of a missing database = %v", r.err)
	}
	// On PostgreSQL backup explains pg_dump and fails, without connecting anywhere.
	pg := map[string]string{"GRCONNECT_DATABASE": "postgres://grconnect@db.invalid/grconnect"}
	r := runCmd(t, pg, "", "backup", "--to", filepath.Join(t.TempDir(), "x.db"))
	if r.err == nil || !strings.Contains(r.err.Error(), "pg_dump") || !strings.Contains(r.err.Error(), "pg_restore") {
		t.Errorf("backup on PostgreSQL = %v", r.err)
	}
	if r := runCmd(t, pg, "", "restore", "--from", "x.db"); r.err == nil || !strings.Contains(r.err.Error(), "pg_restore") {
		t.Errorf("restore on PostgreSQL = %v", r.err)
	}
	r = runCmd(t, env, "", "help")
	for _, want := range []string{"grconnect backup --to FILE", "grconnect restore --from FILE", "grconnect verify [--from FILE]", "grconnect version"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("usage lacks %q", want)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := runCmd(t, nil, "", args...)
		if r.err != nil {
			t.Fatalf("%v: %v", args, r.err)
		}
		for _, want := range []string{"grconnect ", "commit:  ", "built:   ", "go:      " + runtime.Version()} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v output lacks %q:\n%s", args, want, r.stdout)
			}
		}
	}
	if r := runCmd(t, nil, "", "version", "now"); r.err == nil {
		t.Error("version with an argument succeeded")
	}
}

// TestLogFormatAndLevel: GRCONNECT_LOG_FORMAT=json writes JSON lines, a level
// hides what is below it, and a bad value stops the command in one line.
func TestLogFormatAndLevel(t *testing.T) {
	env, _ := dbEnv(t)
	env["GRCONNECT_LOG_FORMAT"] = "json"
	r := runCmd(t, env, "", "migrate")
	if r.err != nil {
		t.Fatal(r.err)
	}
	line := strings.SplitN(strings.TrimSpace(r.stderr), "\n", 2)[0]
	var rec map[string]any
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["msg"] != "database migrated" || rec["level"] != "INFO" {
		t.Errorf("log line %q is not the JSON migration record: %v", line, err)
	}
	env2, _ := dbEnv(t)
	env2["GRCONNECT_LOG_LEVEL"] = "warn"
	if r := runCmd(t, env2, "", "migrate"); r.err != nil || strings.Contains(r.stderr, "database migrated") {
		t.Errorf("an info line logged at level warn: %q %v", r.stderr, r.err)
	}
	for _, bad := range []map[string]string{{"GRCONNECT_LOG_FORMAT": "yaml"}, {"GRCONNECT_LOG_LEVEL": "loud"}} {
		e, _ := dbEnv(t)
		for k, v := range bad {
			e[k] = v
		}
		for k := range bad {
			mustOneLine(t, runCmd(t, e, "", "migrate").err, k)
		}
	}
	// The flag works as the variable does.
	e, _ := dbEnv(t)
	r = runCmd(t, e, "", "migrate", "--log-format=json", "--log-level=debug")
	if r.err != nil || !strings.HasPrefix(strings.TrimSpace(r.stderr), "{") {
		t.Errorf("--log-format=json: %q %v", r.stderr, r.err)
	}
}

// TestHealthcheckCommand: exit 0 while the server on GRCONNECT_ADDR's port is
// ready, an error naming why otherwise.
func TestHealthcheckCommand(t *testing.T) {
	env, _ := dbEnv(t)
	s := startServe(t, env)
	_, port, _ := strings.Cut(strings.TrimPrefix(s.url, "http://"), ":")
	check := map[string]string{"GRCONNECT_DATABASE": env["GRCONNECT_DATABASE"], "GRCONNECT_ADDR": ":" + port}
	if r := runCmd(t, check, "", "healthcheck"); r.err != nil || r.stdout != "ready\n" {
		t.Fatalf("healthcheck of a ready server: %q %v", r.stdout, r.err)
	}
	if r := runCmd(t, nil, "", "healthcheck", "--url", s.url+"/readyz"); r.err != nil {
		t.Fatalf("healthcheck --url: %v", r.err)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, check, "", "healthcheck"); r.err == nil || !strings.Contains(r.err.Error(), "not ready") {
		t.Errorf("healthcheck of a stopped server: %v", r.err)
	}
	if r := runCmd(t, nil, "", "healthcheck", "--url", s.url+"/healthz-nope"); r.err == nil {
		t.Error("healthcheck of a 404 passed")
	}
}

// TestOnlyServePreparesTheBackupDir: the scheduled backups' directory is made by
// the server that writes into it, not by a command that merely opens the install.
func TestOnlyServePreparesTheBackupDir(t *testing.T) {
	env, path := dbEnv(t)
	dir := filepath.Join(filepath.Dir(path), "..", "backups")
	env["GRCONNECT_BACKUP_DIR"] = dir
	if r := runCmd(t, env, "the-client-secret\n", "app", "create", "--name", "Acme", "--client-id", "acme", "--client-secret-stdin"); r.err != nil {
		t.Fatalf("app create: %v %s", r.err, r.stderr)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("app create made the backup directory (stat: %v)", err)
	}
	if err := startServe(t, env).stop(t); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Fatalf("serve did not prepare the backup directory 0700: %v %v", st, err)
	}
}

// TestBackupOfAnOlderInstall: a newer grconnect backs up an older server's
// database before upgrading it, and writes nothing to that database (it has no
// key check table or audit log yet). The older schema is made by taking the
// newer tables away from a current one.
func TestBackupOfAnOlderInstall(t *testing.T) {
	modelstest.SkipOnPostgres(t, "grconnect backup copies SQLite")
	env, dbPath := dbEnv(t)
	env["GRCONNECT_SECRET_KEY"] = keyText(1)
	if r := runCmd(t, env, "client-secret-1\n", "app", "create", "--name", "Acme", "--client-id", "acme", "--client-secret-stdin"); r.err != nil {
		t.Fatal(r.err)
	}
	store := openStore(t, dbPath)
	for _, q := range []string{"DROP TABLE audit_log", "DROP TABLE install_secrets", "DELETE FROM schema_migrations WHERE version >= 8"} {
		if err := store.DB().Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	to := filepath.Join(t.TempDir(), "before-upgrade.db")
	r := runCmd(t, env, "", "backup", "--to", to)
	if r.err != nil {
		t.Fatalf("backup of a schema-7 install: %v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(r.stdout, "schema version 7") {
		t.Errorf("the report does not name the backup's schema: %s", r.stdout)
	}
	if st, err := os.Stat(to); err != nil || st.Size() == 0 {
		t.Fatalf("no backup file: %v", err)
	}
	var tables int64
	store.DB().Raw("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('audit_log', 'install_secrets')").Scan(&tables)
	if v, err := store.CurrentSchemaVersion(t.Context()); err != nil || v != 7 || tables != 0 {
		t.Fatalf("the backup changed the older database: schema %d (%v), %d new tables", v, err, tables)
	}
}

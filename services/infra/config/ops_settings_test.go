package config_test

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/services/infra/config"
)

// opsSettings are the settings of backups, the audit log, the timeline and logging,
// with their defaults.
var opsSettings = []struct{ env, flag, def string }{
	{"GRCONNECT_BACKUP_DIR", "backup-dir", ""},
	{"GRCONNECT_BACKUP_EVERY", "backup-every", "24h"},
	{"GRCONNECT_BACKUP_KEEP", "backup-keep", "7"},
	{"GRCONNECT_AUDIT_RETENTION", "audit-retention", "365d"},
	{"GRCONNECT_TIMELINE_RETENTION", "timeline-retention", "90d"},
	{"GRCONNECT_LOG_FORMAT", "log-format", "text"},
	{"GRCONNECT_LOG_LEVEL", "log-level", ""},
}

func TestOpsSettingsDefaults(t *testing.T) {
	fs, _ := bind(t, nil)
	for _, s := range opsSettings {
		f := fs.Lookup(s.flag)
		if f == nil {
			t.Errorf("no --%s flag", s.flag)
			continue
		}
		if f.DefValue != s.def {
			t.Errorf("--%s default = %q, want %q", s.flag, f.DefValue, s.def)
		}
		if !strings.Contains(f.Usage, s.env) {
			t.Errorf("--%s usage does not name %s", s.flag, s.env)
		}
	}
	c := mustLoad(t, nil)
	if c.BackupDir != "" || c.BackupEvery != 24*time.Hour || c.BackupKeep != 7 || c.AuditRetention != 365*24*time.Hour || c.TimelineRetention != 90*24*time.Hour ||
		c.LogJSON || c.LogLevel != nil {
		t.Errorf("defaults: dir %q every %v keep %d retention %v timeline %v json %v level %v", c.BackupDir, c.BackupEvery, c.BackupKeep, c.AuditRetention,
			c.TimelineRetention, c.LogJSON, c.LogLevel)
	}
}

func TestOpsSettingsValues(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "backups")
	c := mustLoad(t, map[string]string{"GRCONNECT_BACKUP_DIR": dir, "GRCONNECT_BACKUP_EVERY": "6h", "GRCONNECT_AUDIT_RETENTION": "8760h",
		"GRCONNECT_LOG_FORMAT": "json"}, "--backup-keep=30", "--log-level=debug")
	if c.BackupDir != dir || c.BackupEvery != 6*time.Hour || c.BackupKeep != 30 || c.AuditRetention != 8760*time.Hour || !c.LogJSON ||
		c.LogLevel == nil || *c.LogLevel != slog.LevelDebug {
		t.Fatalf("got dir %q every %v keep %d retention %v json %v level %v", c.BackupDir, c.BackupEvery, c.BackupKeep, c.AuditRetention, c.LogJSON, c.LogLevel)
	}
	if err := c.PrepareBackupDir(); err != nil {
		t.Fatal(err)
	}
	if c := mustLoad(t, map[string]string{"GRCONNECT_AUDIT_RETENTION": "0"}); c.AuditRetention != 0 {
		t.Errorf("retention 0 = %v, want 0 (for ever)", c.AuditRetention)
	}
	if c := mustLoad(t, map[string]string{"GRCONNECT_TIMELINE_RETENTION": "0"}, "--audit-retention=30d"); c.TimelineRetention != 0 || c.AuditRetention != 30*24*time.Hour {
		t.Errorf("timeline 0 = %v, audit 30d = %v", c.TimelineRetention, c.AuditRetention)
	}
	if c := mustLoad(t, nil, "--timeline-retention=2400h"); c.TimelineRetention != 100*24*time.Hour || c.AuditRetention != 365*24*time.Hour {
		t.Errorf("timeline 2400h = %v, audit = %v", c.TimelineRetention, c.AuditRetention)
	}
	if c := mustLoad(t, map[string]string{"GRCONNECT_AUDIT_RETENTION": "30d", "GRCONNECT_LOG_LEVEL": "WARN"}); c.AuditRetention != 30*24*time.Hour ||
		*c.LogLevel != slog.LevelWarn {
		t.Errorf("30d = %v, WARN = %v", c.AuditRetention, c.LogLevel)
	}
}

func TestOpsSettingsRefuseBadValues(t *testing.T) {
	flagOf := map[string]string{}
	for _, s := range opsSettings {
		flagOf[s.env] = s.flag
	}
	tests := []struct{ name, env, value string }{
		{"backup interval not a duration", "GRCONNECT_BACKUP_EVERY", "daily"},
		{"backup interval too short", "GRCONNECT_BACKUP_EVERY", "10s"},
		{"backups kept zero", "GRCONNECT_BACKUP_KEEP", "0"},
		{"backups kept not a number", "GRCONNECT_BACKUP_KEEP", "many"},
		{"retention not a duration", "GRCONNECT_AUDIT_RETENTION", "a year"},
		{"retention under a day", "GRCONNECT_AUDIT_RETENTION", "3h"},
		{"retention zero days", "GRCONNECT_AUDIT_RETENTION", "0d"},
		{"timeline retention not a duration", "GRCONNECT_TIMELINE_RETENTION", "3 months"},
		{"timeline retention under a day", "GRCONNECT_TIMELINE_RETENTION", "12h"},
		{"log format unknown", "GRCONNECT_LOG_FORMAT", "logfmt"},
		{"log level unknown", "GRCONNECT_LOG_LEVEL", "verbose"},
		{"log level a number", "GRCONNECT_LOG_LEVEL", "-4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, how := range []string{"env", "flag"} {
				var err error
				if how == "env" {
					_, err = load(t, map[string]string{tt.env: tt.value})
				} else {
					_, err = load(t, nil, "--"+flagOf[tt.env]+"="+tt.value)
				}
				if err == nil {
					t.Fatalf("%s: %s=%q accepted", how, tt.env, tt.value)
				}
				if msg := err.Error(); !strings.Contains(msg, tt.env) || !strings.Contains(msg, "--"+flagOf[tt.env]) || strings.Contains(msg, "\n") {
					t.Errorf("%s: error %q is not one line naming %s and --%s", how, msg, tt.env, flagOf[tt.env])
				}
			}
		})
	}
	// The log settings are also read before Load, to build the logger: the same check.
	_, loader := bind(t, map[string]string{"GRCONNECT_LOG_FORMAT": "xml"})
	if _, _, err := loader.Logging(); err == nil || !strings.Contains(err.Error(), "GRCONNECT_LOG_FORMAT") {
		t.Errorf("Logging with a bad format = %v", err)
	}
}

func TestScheduledBackupsAreForSQLite(t *testing.T) {
	_, err := load(t, map[string]string{"GRCONNECT_DATABASE": "postgres://u@db.internal/grconnect", "GRCONNECT_BACKUP_DIR": "/var/backups/grconnect"})
	if err == nil || !strings.Contains(err.Error(), "GRCONNECT_BACKUP_DIR") || !strings.Contains(err.Error(), "pg_dump") {
		t.Fatalf("postgres with a backup dir: %v", err)
	}
}

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"1d": 24 * time.Hour, "365d": 365 * 24 * time.Hour, "24h": 24 * time.Hour, "0": 0} {
		if got, err := config.ParseRetention(in); err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

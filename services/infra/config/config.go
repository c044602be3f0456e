// Package config reads grconnect's settings from flags and GRCONNECT_* environment
// variables (a flag wins over its variable, which wins over the default) and validates
// them, so that a bad setting stops the process at start with a message naming it.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/grconnect/grconnect/services/infra/secrets"
)

// Config is the validated configuration of one grconnect process.
type Config struct {
	Addr               string
	BaseURL            string // no trailing slash
	Database           string // SQLite path or postgres:// URL
	DataDir            string // where secret.key lives when no key is configured
	SecretKey          []byte // nil until LoadSecretKey
	secretKeyText      string
	GetResponseAuthURL string
	GetResponseAPIURL  string
	RefreshMargin      time.Duration
	Keepalive          time.Duration
	RefreshRate        float64 // automatic refresh calls per second
	RefreshConcurrency int
	RefreshInterval    time.Duration // how often the refresher looks for due connections
	Demo               bool
	// SMTPURL is the mail server for operator alerts ("" for none): smtp:// uses
	// STARTTLS when the server offers it, smtps:// implicit TLS.
	SMTPURL  *url.URL
	MailFrom string
	// Warnings are problems worth a log line at start that do not stop it.
	Warnings []string
	// PreviousSecretKeys still open values sealed before a key rotation; nothing is
	// sealed with them (GRCONNECT_PREVIOUS_SECRET_KEYS, plus secret.previous.key).
	PreviousSecretKeys [][]byte
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is believed.
	TrustedProxies []*net.IPNet
	// MetricsToken, when set, is the bearer token /metrics requires.
	MetricsToken string
	// WebhookAllowPrivate lets webhooks reach loopback and private addresses.
	WebhookAllowPrivate bool
	// EventsRate is how many GetResponse events per second each connection's
	// events URL takes (0 in a Config built by hand: the default).
	EventsRate float64
	// BackupDir, when set, turns on scheduled backups (SQLite only): a copy every
	// BackupEvery, the newest BackupKeep kept.
	BackupDir   string
	BackupEvery time.Duration
	BackupKeep  int
	// AuditRetention is how long audit entries are kept (0: for ever).
	AuditRetention time.Duration
	// LogJSON writes log lines as JSON objects instead of key=value text.
	LogJSON bool
	// LogLevel, when set, is the lowest level logged (otherwise each command's own).
	LogLevel *slog.Level
}

// setting describes one configuration value: its variable, flag and default.
type setting struct {
	env, flag, def, usage string
}

var settings = []setting{
	{"GRCONNECT_ADDR", "addr", ":8080", "listen address"},
	{"GRCONNECT_BASE_URL", "base-url", "http://localhost:8080", "public URL; the OAuth redirect URL is BASE_URL/oauth/callback"},
	{"GRCONNECT_DATABASE", "database", "data/grconnect.db", "SQLite file path, or postgres://… URL"},
	{"GRCONNECT_SECRET_KEY", "secret-key", "", "32-byte key, base64 (default: generated once into secret.key beside the database)"},
	{"GRCONNECT_GETRESPONSE_AUTH_URL", "getresponse-auth-url", "https://app.getresponse.com/oauth2_authorize.html", "default authorize URL for new apps"},
	{"GRCONNECT_GETRESPONSE_API_URL", "getresponse-api-url", "https://api.getresponse.com/v3", "default API base for new apps; token URL is API_URL/token"},
	{"GRCONNECT_REFRESH_MARGIN", "refresh-margin", "10m", "refresh this long before a token expires"},
	{"GRCONNECT_KEEPALIVE", "keepalive", "24h", "refresh a connection not refreshed for this long anyway"},
	{"GRCONNECT_REFRESH_RATE", "refresh-rate", "10", "at most this many automatic refresh calls to GetResponse per second"},
	{"GRCONNECT_REFRESH_CONCURRENCY", "refresh-concurrency", "4", "automatic refreshes in flight at once"},
	{"GRCONNECT_REFRESH_INTERVAL", "refresh-interval", "15s", "how often the background refresher looks for due connections"},
	{"GRCONNECT_SMTP_URL", "smtp-url", "", "smtp://user:pass@host:587 or smtps://… for operator alert e-mails (default: no e-mail)"},
	{"GRCONNECT_MAIL_FROM", "mail-from", "", "sender of alert e-mails (default: grconnect@ the base URL's host)"},
	{"GRCONNECT_PREVIOUS_SECRET_KEYS", "previous-secret-keys", "", "comma-separated old keys (base64) still accepted for reading during a key rotation; all writes use GRCONNECT_SECRET_KEY"},
	{"GRCONNECT_TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed"},
	{"GRCONNECT_METRICS_TOKEN", "metrics-token", "", "when set, /metrics requires Authorization: Bearer <token>"},
	{"GRCONNECT_WEBHOOK_ALLOW_PRIVATE", "webhook-allow-private", "false", "let webhooks reach loopback and private-network addresses (link-local and cloud metadata stay refused)"},
	{"GRCONNECT_EVENTS_RATE", "events-rate", "100", "GetResponse events each connection's events URL takes per second (bursts of ten seconds' worth); more are answered 429"},
	{"GRCONNECT_BACKUP_DIR", "backup-dir", "", "directory for scheduled backups of the SQLite database (default: none)"},
	{"GRCONNECT_BACKUP_EVERY", "backup-every", "24h", "how often a scheduled backup is made (with GRCONNECT_BACKUP_DIR)"},
	{"GRCONNECT_BACKUP_KEEP", "backup-keep", "7", "how many scheduled backups are kept; older ones are deleted"},
	{"GRCONNECT_AUDIT_RETENTION", "audit-retention", "365d", "how long audit log entries are kept, like 365d or 8760h (0: for ever)"},
	{"GRCONNECT_LOG_FORMAT", "log-format", "text", "log line format: text (key=value) or json"},
	{"GRCONNECT_LOG_LEVEL", "log-level", "", "lowest level logged: debug, info, warn or error (default: info for serve, warn for the other commands)"},
}

// hidden are the settings whose configured value is never printed in -help output
// (keys, tokens, passwords).
var hidden = map[string]bool{"GRCONNECT_SECRET_KEY": true, "GRCONNECT_PREVIOUS_SECRET_KEYS": true, "GRCONNECT_METRICS_TOKEN": true, "GRCONNECT_SMTP_URL": true}

// Loader binds the settings to a flag set and, after parsing, validates them.
type Loader struct {
	values  map[string]*string
	fs      *flag.FlagSet
	fromEnv map[string]bool
}

// Bind registers every setting as a flag on fs, defaulting to its environment
// variable (read through getenv) or its built-in default.
func Bind(fs *flag.FlagSet, getenv func(string) string) *Loader {
	l := &Loader{values: map[string]*string{}, fs: fs, fromEnv: map[string]bool{}}
	for _, s := range settings {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
			l.fromEnv[s.env] = true
		}
		usage := s.usage + " (" + s.env + ")"
		if hidden[s.env] {
			// Never print a configured key or token in -help output.
			l.values[s.env] = new(string)
			*l.values[s.env] = def
			fs.Func(s.flag, usage, func(v string) error { *l.values[s.env] = v; return nil })
			continue
		}
		if s.def == "false" {
			// A switch: --webhook-allow-private alone means true.
			v := &boolText{text: def}
			l.values[s.env] = &v.text
			fs.Var(v, s.flag, usage)
			continue
		}
		l.values[s.env] = fs.String(s.flag, def, usage)
	}
	return l
}

// boolText is a boolean setting's flag: its text is validated by Load, like the
// environment variable's.
type boolText struct{ text string }

func (b *boolText) String() string     { return b.text }
func (b *boolText) Set(v string) error { b.text = v; return nil }
func (b *boolText) IsBoolFlag() bool   { return true }

// Load validates the bound values and returns the configuration. Errors are one line
// and name the setting.
func (l *Loader) Load() (*Config, error) {
	v := func(env string) string { return strings.TrimSpace(*l.values[env]) }
	c := &Config{
		Addr:               v("GRCONNECT_ADDR"),
		Database:           v("GRCONNECT_DATABASE"),
		secretKeyText:      v("GRCONNECT_SECRET_KEY"),
		GetResponseAuthURL: v("GRCONNECT_GETRESPONSE_AUTH_URL"),
		GetResponseAPIURL:  strings.TrimRight(v("GRCONNECT_GETRESPONSE_API_URL"), "/"),
	}
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("invalid %s (--%s): %s", env, flagName(env), fmt.Sprintf(format, args...)))
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || !validPort(port) {
		bad("GRCONNECT_ADDR", "%q is not host:port (for example :8080)", c.Addr)
	}
	base, err := ParseHTTPURL(v("GRCONNECT_BASE_URL"))
	if err != nil {
		bad("GRCONNECT_BASE_URL", "%v", err)
	} else if base.Path != "" && base.Path != "/" || base.RawQuery != "" || base.Fragment != "" {
		bad("GRCONNECT_BASE_URL", "must be scheme://host[:port] without a path, query or fragment")
	}
	c.BaseURL = strings.TrimRight(v("GRCONNECT_BASE_URL"), "/")
	if !l.given("GRCONNECT_BASE_URL") && l.given("GRCONNECT_ADDR") {
		base, warning := baseURLFromAddr(c.Addr, c.BaseURL)
		c.BaseURL = base
		if warning != "" {
			c.Warnings = append(c.Warnings, warning)
		}
	}
	for _, env := range []string{"GRCONNECT_GETRESPONSE_AUTH_URL", "GRCONNECT_GETRESPONSE_API_URL"} {
		if _, err := ParseHTTPURL(v(env)); err != nil {
			bad(env, "%v", err)
		}
	}
	if c.Database == "" {
		bad("GRCONNECT_DATABASE", "must not be empty")
	}
	if c.IsPostgres() {
		if _, err := url.Parse(c.Database); err != nil {
			bad("GRCONNECT_DATABASE", "not a valid postgres URL")
		}
		c.DataDir = "data"
	} else {
		c.DataDir = filepath.Dir(c.Database)
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{"GRCONNECT_REFRESH_MARGIN", &c.RefreshMargin}, {"GRCONNECT_KEEPALIVE", &c.Keepalive}} {
		parsed, err := time.ParseDuration(v(d.env))
		if err != nil || parsed <= 0 {
			bad(d.env, "%q is not a positive duration (for example 10m or 24h)", v(d.env))
		}
		*d.dst = parsed
	}
	if r, err := strconv.ParseFloat(v("GRCONNECT_REFRESH_RATE"), 64); err != nil || r <= 0 || r > 80 {
		bad("GRCONNECT_REFRESH_RATE", "%q is not a number of calls per second above 0 and at most 80 (GetResponse's limit)", v("GRCONNECT_REFRESH_RATE"))
	} else {
		c.RefreshRate = r
	}
	if r, err := strconv.ParseFloat(v("GRCONNECT_EVENTS_RATE"), 64); err != nil || r < 1 || r > 100000 {
		bad("GRCONNECT_EVENTS_RATE", "%q is not a number of events per second from 1 to 100000", v("GRCONNECT_EVENTS_RATE"))
	} else {
		c.EventsRate = r
	}
	if n, err := strconv.Atoi(v("GRCONNECT_REFRESH_CONCURRENCY")); err != nil || n < 1 || n > 64 {
		bad("GRCONNECT_REFRESH_CONCURRENCY", "%q is not a whole number from 1 to 64", v("GRCONNECT_REFRESH_CONCURRENCY"))
	} else {
		c.RefreshConcurrency = n
	}
	if d, err := time.ParseDuration(v("GRCONNECT_REFRESH_INTERVAL")); err != nil || d < 100*time.Millisecond || d > time.Hour {
		bad("GRCONNECT_REFRESH_INTERVAL", "%q is not a duration from 100ms to 1h", v("GRCONNECT_REFRESH_INTERVAL"))
	} else {
		c.RefreshInterval = d
	}
	if raw := v("GRCONNECT_SMTP_URL"); raw != "" {
		u, err := url.Parse(raw)
		switch {
		case err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "":
			bad("GRCONNECT_SMTP_URL", "must be smtp://[user:pass@]host[:port] or smtps://…")
		case u.Port() != "" && !validPort(u.Port()):
			bad("GRCONNECT_SMTP_URL", "%q is not a port", u.Port())
		default:
			c.SMTPURL = u
		}
	}
	c.MailFrom = v("GRCONNECT_MAIL_FROM")
	if c.MailFrom == "" && base != nil {
		c.MailFrom = "grconnect@" + base.Hostname()
	}
	if _, err := mail.ParseAddress(c.MailFrom); c.MailFrom != "" && (err != nil || strings.ContainsAny(c.MailFrom, "\r\n")) {
		bad("GRCONNECT_MAIL_FROM", "%q is not an e-mail address", c.MailFrom)
	}
	if c.secretKeyText != "" {
		key, err := secrets.ParseKey(c.secretKeyText)
		if err != nil {
			bad("GRCONNECT_SECRET_KEY", "%v", err)
		}
		c.SecretKey = key
	}
	for i, text := range splitList(v("GRCONNECT_PREVIOUS_SECRET_KEYS")) {
		key, err := secrets.ParseKey(text)
		if err != nil {
			bad("GRCONNECT_PREVIOUS_SECRET_KEYS", "key %d: %v", i+1, err)
			break
		}
		c.PreviousSecretKeys = append(c.PreviousSecretKeys, key)
	}
	for _, text := range splitList(v("GRCONNECT_TRUSTED_PROXIES")) {
		n, err := parseCIDR(text)
		if err != nil {
			bad("GRCONNECT_TRUSTED_PROXIES", "%q is not a CIDR like 10.0.0.0/8 or an IP address", text)
			break
		}
		c.TrustedProxies = append(c.TrustedProxies, n)
	}
	c.MetricsToken = v("GRCONNECT_METRICS_TOKEN")
	if c.MetricsToken != "" && (len(c.MetricsToken) < 16 || strings.ContainsAny(c.MetricsToken, " \t\r\n,")) {
		bad("GRCONNECT_METRICS_TOKEN", "use at least 16 characters without spaces or commas")
	}
	if b, err := strconv.ParseBool(v("GRCONNECT_WEBHOOK_ALLOW_PRIVATE")); err != nil {
		bad("GRCONNECT_WEBHOOK_ALLOW_PRIVATE", "%q is not true or false", v("GRCONNECT_WEBHOOK_ALLOW_PRIVATE"))
	} else {
		c.WebhookAllowPrivate = b
	}
	if dir := v("GRCONNECT_BACKUP_DIR"); dir != "" {
		if c.IsPostgres() {
			bad("GRCONNECT_BACKUP_DIR", "scheduled backups copy a SQLite database; on PostgreSQL use pg_dump (see docs/deploy.md)")
		}
		c.BackupDir = dir
	}
	if d, err := time.ParseDuration(v("GRCONNECT_BACKUP_EVERY")); err != nil || d < time.Minute {
		bad("GRCONNECT_BACKUP_EVERY", "%q is not a duration of at least 1m (for example 6h or 24h)", v("GRCONNECT_BACKUP_EVERY"))
	} else {
		c.BackupEvery = d
	}
	if n, err := strconv.Atoi(v("GRCONNECT_BACKUP_KEEP")); err != nil || n < 1 || n > 10000 {
		bad("GRCONNECT_BACKUP_KEEP", "%q is not a whole number from 1 to 10000", v("GRCONNECT_BACKUP_KEEP"))
	} else {
		c.BackupKeep = n
	}
	if d, err := ParseRetention(v("GRCONNECT_AUDIT_RETENTION")); err != nil {
		bad("GRCONNECT_AUDIT_RETENTION", "%v", err)
	} else {
		c.AuditRetention = d
	}
	if jsonFormat, level, err := logging(v("GRCONNECT_LOG_FORMAT"), v("GRCONNECT_LOG_LEVEL")); err != nil {
		errs = append(errs, err)
	} else {
		c.LogJSON, c.LogLevel = jsonFormat, level
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return c, nil
}

// Logging returns the log format and level the bound settings ask for (level nil:
// the command's own). Commands build their logger with it before Load, which
// reports a bad value in its one line.
func (l *Loader) Logging() (jsonFormat bool, level *slog.Level, err error) {
	return logging(strings.TrimSpace(*l.values["GRCONNECT_LOG_FORMAT"]), strings.TrimSpace(*l.values["GRCONNECT_LOG_LEVEL"]))
}

func logging(format, levelText string) (jsonFormat bool, level *slog.Level, err error) {
	switch strings.ToLower(format) {
	case "text", "":
	case "json":
		jsonFormat = true
	default:
		return false, nil, fmt.Errorf("invalid GRCONNECT_LOG_FORMAT (--log-format): %q is not text or json", format)
	}
	if levelText != "" {
		var lv slog.Level
		switch strings.ToLower(levelText) {
		case "debug", "info", "warn", "error":
			_ = lv.UnmarshalText([]byte(levelText))
		default:
			return false, nil, fmt.Errorf("invalid GRCONNECT_LOG_LEVEL (--log-level): %q is not debug, info, warn or error", levelText)
		}
		level = &lv
	}
	return jsonFormat, level, nil
}

// ParseRetention reads a retention period: a number of days ("365d"), a Go
// duration of at least a day ("8760h"), or 0 for ever.
func ParseRetention(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 36500 {
			return 0, fmt.Errorf("%q is not a number of days from 1d to 36500d, a duration like 8760h, or 0 (keep for ever)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 24*time.Hour {
		return 0, fmt.Errorf("%q is not a number of days like 365d, a duration of at least 24h like 8760h, or 0 (keep for ever)", s)
	}
	return d, nil
}

// PrepareBackupDir creates the scheduled backups' directory (0700) and proves it
// is writable.
func (c *Config) PrepareBackupDir() error {
	if c.BackupDir == "" {
		return nil
	}
	if err := os.MkdirAll(c.BackupDir, 0o700); err != nil {
		return fmt.Errorf("invalid GRCONNECT_BACKUP_DIR (--backup-dir): cannot create %s: %v", c.BackupDir, errors.Unwrap(err))
	}
	f, err := os.CreateTemp(c.BackupDir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("invalid GRCONNECT_BACKUP_DIR (--backup-dir): %s is not writable", c.BackupDir)
	}
	f.Close()
	return os.Remove(f.Name())
}

// splitList splits a comma- or space-separated setting into its non-empty items.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// parseCIDR parses a CIDR, or a single address as a /32 (IPv4) or /128 (IPv6).
func parseCIDR(s string) (*net.IPNet, error) {
	if _, n, err := net.ParseCIDR(s); err == nil {
		return n, nil
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("not a CIDR or an IP address: %q", s)
	}
	bits := 128
	if ip4 := ip.To4(); ip4 != nil {
		ip, bits = ip4, 32
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
}

// IsPostgres reports whether the database setting names a PostgreSQL server.
func (c *Config) IsPostgres() bool {
	return strings.HasPrefix(c.Database, "postgres://") || strings.HasPrefix(c.Database, "postgresql://")
}

// IsHTTPS reports whether the public URL is https (cookies are then Secure).
func (c *Config) IsHTTPS() bool { return strings.HasPrefix(c.BaseURL, "https://") }

// RedirectURL is the OAuth redirect URL to register with GetResponse.
func (c *Config) RedirectURL() string { return c.BaseURL + "/oauth/callback" }

// PrepareDataDir creates the data directory and proves it is writable.
func (c *Config) PrepareDataDir() error {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("invalid GRCONNECT_DATABASE (--database): cannot create data directory %s: %v", c.DataDir, errors.Unwrap(err))
	}
	f, err := os.CreateTemp(c.DataDir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("invalid GRCONNECT_DATABASE (--database): data directory %s is not writable", c.DataDir)
	}
	f.Close()
	return os.Remove(f.Name())
}

// KeyFile is where the secret key lives when GRCONNECT_SECRET_KEY is not set.
func (c *Config) KeyFile() string { return filepath.Join(c.DataDir, "secret.key") }

// PreviousKeyFile holds, one per line, the keys a rotation of KeyFile retired; they
// still open values sealed before it (see grconnect rekey).
func (c *Config) PreviousKeyFile() string { return filepath.Join(c.DataDir, "secret.previous.key") }

// KeyConfigured reports whether the key comes from GRCONNECT_SECRET_KEY rather than
// from KeyFile.
func (c *Config) KeyConfigured() bool { return c.secretKeyText != "" }

// KeyFileMissing reports whether LoadSecretKey would create a new key: no key is
// configured and KeyFile does not exist.
func (c *Config) KeyFileMissing() (bool, error) {
	if c.SecretKey != nil {
		return false, nil
	}
	_, err := os.Stat(c.KeyFile())
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, fs.ErrNotExist):
		return true, nil
	}
	return false, fmt.Errorf("invalid GRCONNECT_SECRET_KEY (--secret-key): cannot use key file: %v", err)
}

// LoadSecretKey sets SecretKey from the data directory's secret.key when none was
// configured, creating the file on first start (created reports a new key), and adds
// the keys of secret.previous.key, if any, to PreviousSecretKeys. Callers decide
// first whether creating a key is right (KeyFileMissing): never over existing data.
func (c *Config) LoadSecretKey() (created bool, path string, err error) {
	if c.SecretKey != nil {
		return false, "", nil
	}
	path = c.KeyFile()
	key, created, err := secrets.LoadOrCreateKeyFile(path)
	if err != nil {
		return false, path, fmt.Errorf("invalid GRCONNECT_SECRET_KEY (--secret-key): cannot use key file: %v", err)
	}
	previous, err := secrets.ReadKeyList(c.PreviousKeyFile())
	if err != nil {
		return false, path, fmt.Errorf("invalid GRCONNECT_PREVIOUS_SECRET_KEYS (--previous-secret-keys): cannot use %v", err)
	}
	c.SecretKey = key
	c.PreviousSecretKeys = append(c.PreviousSecretKeys, previous...)
	return created, path, nil
}

// ParseHTTPURL parses an absolute http or https URL with a host.
func ParseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q must not contain credentials", u.Redacted())
	}
	return u, nil
}

func flagName(env string) string {
	for _, s := range settings {
		if s.env == env {
			return s.flag
		}
	}
	return strings.ToLower(env)
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535
}

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
	RefreshLease       time.Duration // how long a refresh holds its connection's lease
	// ProxyMaxWait is how long a proxied call waits in its GetResponse account's
	// queue for the account's limits before it is answered 429 (0: not at all).
	ProxyMaxWait time.Duration
	Demo         bool
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
	// GetResponseAllowPrivate lets calls to apps' GetResponse URLs reach loopback
	// and private addresses (the hosts of GetResponseAuthURL and GetResponseAPIURL
	// may be private without it).
	GetResponseAllowPrivate bool
	// BackupDir, when set, turns on scheduled backups (SQLite only): a copy every
	// BackupEvery, the newest BackupKeep kept.
	BackupDir   string
	BackupEvery time.Duration
	BackupKeep  int
	// AuditRetention is how long audit entries are kept (0: for ever).
	AuditRetention time.Duration
	// TimelineRetention is how long connections' timeline events are kept, but
	// each connection's newest (0: for ever).
	TimelineRetention time.Duration
	// LogJSON writes log lines as JSON objects instead of key=value text.
	LogJSON bool
	// LogLevel, when set, is the lowest level logged (otherwise each command's own).
	LogLevel *slog.Level
}

// setting describes one configuration value: its variable, flag, default and help,
// and apply, which parses and validates the value into the Config. An error from
// apply is the one line's reason; Load adds the setting's names.
type setting struct {
	env, flag, def, usage string
	// hidden settings (keys, tokens, passwords) never print their value in -help.
	hidden bool
	apply  func(c *Config, v string) error
}

var settings = []setting{
	{env: "GRCONNECT_ADDR", flag: "addr", def: ":8080", usage: "listen address", apply: func(c *Config, v string) error {
		if _, port, err := net.SplitHostPort(v); err != nil || !validPort(port) {
			return fmt.Errorf("%q is not host:port (for example :8080)", v)
		}
		c.Addr = v
		return nil
	}},
	{env: "GRCONNECT_BASE_URL", flag: "base-url", def: "http://localhost:8080", usage: "public URL; the OAuth redirect URL is BASE_URL/oauth/callback", apply: func(c *Config, v string) error {
		base, err := ParseHTTPURL(v)
		if err != nil {
			return err
		}
		if base.Path != "" && base.Path != "/" || base.RawQuery != "" || base.Fragment != "" {
			return errors.New("must be scheme://host[:port] without a path, query or fragment")
		}
		c.BaseURL = strings.TrimRight(v, "/")
		return nil
	}},
	{env: "GRCONNECT_DATABASE", flag: "database", def: "data/grconnect.db", usage: "SQLite file path, or postgres://… URL", apply: func(c *Config, v string) error {
		if v == "" {
			return errors.New("must not be empty")
		}
		c.Database = v
		if !c.IsPostgres() {
			c.DataDir = filepath.Dir(v)
			return nil
		}
		c.DataDir = "data"
		if _, err := url.Parse(v); err != nil {
			return errors.New("not a valid postgres URL")
		}
		return nil
	}},
	{env: "GRCONNECT_SECRET_KEY", flag: "secret-key", usage: "32-byte key, base64 (default: generated once into secret.key beside the database)", hidden: true, apply: func(c *Config, v string) error {
		c.secretKeyText = v
		if v == "" {
			return nil
		}
		key, err := secrets.ParseKey(v)
		c.SecretKey = key
		return err
	}},
	{env: "GRCONNECT_GETRESPONSE_AUTH_URL", flag: "getresponse-auth-url", def: "https://app.getresponse.com/oauth2_authorize.html", usage: "default authorize URL for new apps", apply: func(c *Config, v string) error {
		c.GetResponseAuthURL = v
		_, err := ParseHTTPURL(v)
		return err
	}},
	{env: "GRCONNECT_GETRESPONSE_API_URL", flag: "getresponse-api-url", def: "https://api.getresponse.com/v3", usage: "default API base for new apps; token URL is API_URL/token", apply: func(c *Config, v string) error {
		c.GetResponseAPIURL = strings.TrimRight(v, "/")
		_, err := ParseHTTPURL(v)
		return err
	}},
	{env: "GRCONNECT_REFRESH_MARGIN", flag: "refresh-margin", def: "10m", usage: "refresh this long before a token expires",
		apply: duration(func(c *Config) *time.Duration { return &c.RefreshMargin }, time.Nanosecond, 0, "%q is not a positive duration (for example 10m or 24h)")},
	{env: "GRCONNECT_KEEPALIVE", flag: "keepalive", def: "24h", usage: "refresh a connection not refreshed for this long anyway",
		apply: duration(func(c *Config) *time.Duration { return &c.Keepalive }, time.Nanosecond, 0, "%q is not a positive duration (for example 10m or 24h)")},
	{env: "GRCONNECT_REFRESH_RATE", flag: "refresh-rate", def: "20", usage: "at most this many automatic refresh calls to GetResponse in any one second", apply: func(c *Config, v string) error {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 || r > 80 {
			return fmt.Errorf("%q is not a number of calls per second above 0 and at most 80 (GetResponse's limit)", v)
		}
		c.RefreshRate = r
		return nil
	}},
	{env: "GRCONNECT_REFRESH_CONCURRENCY", flag: "refresh-concurrency", def: "4", usage: "automatic refreshes in flight at once",
		apply: whole(func(c *Config) *int { return &c.RefreshConcurrency }, 1, 64)},
	{env: "GRCONNECT_REFRESH_INTERVAL", flag: "refresh-interval", def: "15s", usage: "how often the background refresher looks for due connections",
		apply: duration(func(c *Config) *time.Duration { return &c.RefreshInterval }, 100*time.Millisecond, time.Hour, "%q is not a duration from 100ms to 1h")},
	{env: "GRCONNECT_REFRESH_LEASE", flag: "refresh-lease", def: "60s", usage: "how long a refresh holds its connection against other replicas (renewed while a received token pair waits for the database); a token call gets at most a third of it",
		apply: duration(func(c *Config) *time.Duration { return &c.RefreshLease }, 5*time.Second, 10*time.Minute, "%q is not a duration from 5s to 10m")},
	{env: "GRCONNECT_PROXY_MAX_WAIT", flag: "proxy-max-wait", def: "5s", usage: "how long a proxied call may wait for its GetResponse account's rate limits before it is answered 429 (0s: never wait)",
		apply: duration(func(c *Config) *time.Duration { return &c.ProxyMaxWait }, 0, time.Minute, "%q is not a duration from 0s to 1m")},
	{env: "GRCONNECT_SMTP_URL", flag: "smtp-url", usage: "smtp://user:pass@host:587 or smtps://… for operator alert e-mails (default: no e-mail)", hidden: true, apply: func(c *Config, v string) error {
		if v == "" {
			return nil
		}
		u, err := url.Parse(v)
		switch {
		case err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "":
			return errors.New("must be smtp://[user:pass@]host[:port] or smtps://…")
		case u.Port() != "" && !validPort(u.Port()):
			return fmt.Errorf("%q is not a port", u.Port())
		}
		c.SMTPURL = u
		return nil
	}},
	{env: "GRCONNECT_MAIL_FROM", flag: "mail-from", usage: "sender of alert e-mails (default: grconnect@ the base URL's host)", apply: func(c *Config, v string) error {
		if v == "" {
			return nil // derived from the base URL once it is known
		}
		if _, err := mail.ParseAddress(v); err != nil || strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("%q is not an e-mail address", v)
		}
		c.MailFrom = v
		return nil
	}},
	{env: "GRCONNECT_PREVIOUS_SECRET_KEYS", flag: "previous-secret-keys", usage: "comma-separated old keys (base64) still accepted for reading during a key rotation; all writes use GRCONNECT_SECRET_KEY", hidden: true, apply: func(c *Config, v string) error {
		for i, text := range splitList(v) {
			key, err := secrets.ParseKey(text)
			if err != nil {
				return fmt.Errorf("key %d: %v", i+1, err)
			}
			c.PreviousSecretKeys = append(c.PreviousSecretKeys, key)
		}
		return nil
	}},
	{env: "GRCONNECT_TRUSTED_PROXIES", flag: "trusted-proxies", usage: "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed", apply: func(c *Config, v string) error {
		for _, text := range splitList(v) {
			n, err := parseCIDR(text)
			if err != nil {
				return fmt.Errorf("%q is not a CIDR like 10.0.0.0/8 or an IP address", text)
			}
			if ones, bits := n.Mask.Size(); ones == 0 || (bits == 128 && ones <= 96 && n.IP.To4() != nil) {
				// (::ffff:0:0/96 is every IPv4 address, written as mapped IPv6.)
				// Every address on the internet could then name any client address it likes.
				return fmt.Errorf("%q trusts every address; list only your reverse proxies' addresses, like 10.0.0.5 or 10.0.0.0/24", text)
			}
			c.TrustedProxies = append(c.TrustedProxies, n)
		}
		return nil
	}},
	{env: "GRCONNECT_METRICS_TOKEN", flag: "metrics-token", usage: "when set, /metrics requires Authorization: Bearer <token>", hidden: true, apply: func(c *Config, v string) error {
		if v != "" && (len(v) < 16 || strings.ContainsAny(v, " \t\r\n,")) {
			return errors.New("use at least 16 characters without spaces or commas")
		}
		c.MetricsToken = v
		return nil
	}},
	{env: "GRCONNECT_WEBHOOK_ALLOW_PRIVATE", flag: "webhook-allow-private", def: "false", usage: "let webhooks reach loopback and private-network addresses (link-local and cloud metadata stay refused)",
		apply: boolean(func(c *Config) *bool { return &c.WebhookAllowPrivate })},
	{env: "GRCONNECT_EVENTS_RATE", flag: "events-rate", def: "100", usage: "GetResponse events each connection's events URL takes per second (bursts of ten seconds' worth); more are answered 429", apply: func(c *Config, v string) error {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 1 || r > 100000 {
			return fmt.Errorf("%q is not a number of events per second from 1 to 100000", v)
		}
		c.EventsRate = r
		return nil
	}},
	{env: "GRCONNECT_GETRESPONSE_ALLOW_PRIVATE", flag: "getresponse-allow-private", def: "false", usage: "let apps' GetResponse URLs reach loopback and private-network addresses (the hosts of the two GETRESPONSE URL settings may be private anyway; link-local and cloud metadata stay refused)",
		apply: boolean(func(c *Config) *bool { return &c.GetResponseAllowPrivate })},
	{env: "GRCONNECT_BACKUP_DIR", flag: "backup-dir", usage: "directory for scheduled backups of the SQLite database (default: none)", apply: func(c *Config, v string) error {
		if v != "" && c.IsPostgres() {
			return errors.New("scheduled backups copy a SQLite database; on PostgreSQL use pg_dump (see docs/deploy.md)")
		}
		c.BackupDir = v
		return nil
	}},
	{env: "GRCONNECT_BACKUP_EVERY", flag: "backup-every", def: "24h", usage: "how often a scheduled backup is made (with GRCONNECT_BACKUP_DIR)",
		apply: duration(func(c *Config) *time.Duration { return &c.BackupEvery }, time.Minute, 0, "%q is not a duration of at least 1m (for example 6h or 24h)")},
	{env: "GRCONNECT_BACKUP_KEEP", flag: "backup-keep", def: "7", usage: "how many scheduled backups are kept; older ones are deleted",
		apply: whole(func(c *Config) *int { return &c.BackupKeep }, 1, 10000)},
	{env: "GRCONNECT_AUDIT_RETENTION", flag: "audit-retention", def: "365d", usage: "how long audit log entries are kept, like 365d or 8760h (0: for ever)", apply: retention(func(c *Config) *time.Duration { return &c.AuditRetention })},
	{env: "GRCONNECT_TIMELINE_RETENTION", flag: "timeline-retention", def: "90d", usage: "how long connections' timeline events are kept, like 90d or 2160h (0: for ever); each connection keeps its newest", apply: retention(func(c *Config) *time.Duration { return &c.TimelineRetention })},
	{env: "GRCONNECT_LOG_FORMAT", flag: "log-format", def: "text", usage: "log line format: text (key=value) or json", apply: func(c *Config, v string) error {
		json, err := logFormat(v)
		c.LogJSON = json
		return err
	}},
	{env: "GRCONNECT_LOG_LEVEL", flag: "log-level", usage: "lowest level logged: debug, info, warn or error (default: info for serve, warn for the other commands)", apply: func(c *Config, v string) error {
		level, err := logLevel(v)
		c.LogLevel = level
		return err
	}},
}

// duration is the apply of a duration setting from min to max (0: no maximum);
// msg, with the value as %q, says what is wanted.
func duration(field func(*Config) *time.Duration, min, max time.Duration, msg string) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < min || max > 0 && d > max {
			return fmt.Errorf(msg, v)
		}
		*field(c) = d
		return nil
	}
}

// retention is the apply of a retention period (ParseRetention).
func retention(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := ParseRetention(v)
		*field(c) = d
		return err
	}
}

// whole is the apply of a whole-number setting from min to max.
func whole(field func(*Config) *int, min, max int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			return fmt.Errorf("%q is not a whole number from %d to %d", v, min, max)
		}
		*field(c) = n
		return nil
	}
}

// boolean is the apply of a true/false setting.
func boolean(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*field(c) = b
		return nil
	}
}

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
		if s.hidden {
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

// Load validates the bound values, one setting after another in the table's order,
// and returns the configuration. An error is one line naming the setting.
func (l *Loader) Load() (*Config, error) {
	c := &Config{}
	for _, s := range settings {
		if err := s.apply(c, strings.TrimSpace(*l.values[s.env])); err != nil {
			return nil, fmt.Errorf("invalid %s (--%s): %v", s.env, s.flag, err)
		}
	}
	// Derived values: a base URL from a listen address given alone, and the
	// sender's default from the base URL's host.
	if !l.given("GRCONNECT_BASE_URL") && l.given("GRCONNECT_ADDR") {
		base, warning := baseURLFromAddr(c.Addr, c.BaseURL)
		c.BaseURL = base
		if warning != "" {
			c.Warnings = append(c.Warnings, warning)
		}
	}
	if c.MailFrom == "" {
		if u, err := url.Parse(c.BaseURL); err == nil && u.Hostname() != "" {
			c.MailFrom = "grconnect@" + u.Hostname()
		}
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
	if jsonFormat, err = logFormat(format); err != nil {
		return false, nil, fmt.Errorf("invalid GRCONNECT_LOG_FORMAT (--log-format): %v", err)
	}
	if level, err = logLevel(levelText); err != nil {
		return false, nil, fmt.Errorf("invalid GRCONNECT_LOG_LEVEL (--log-level): %v", err)
	}
	return jsonFormat, level, nil
}

// logFormat reads GRCONNECT_LOG_FORMAT: text or json.
func logFormat(format string) (bool, error) {
	switch strings.ToLower(format) {
	case "text", "":
		return false, nil
	case "json":
		return true, nil
	}
	return false, fmt.Errorf("%q is not text or json", format)
}

// logLevel reads GRCONNECT_LOG_LEVEL; nil means the command's own level.
func logLevel(text string) (*slog.Level, error) {
	if text == "" {
		return nil, nil
	}
	var lv slog.Level
	switch strings.ToLower(text) {
	case "debug", "info", "warn", "error":
		_ = lv.UnmarshalText([]byte(text))
		return &lv, nil
	}
	return nil, fmt.Errorf("%q is not debug, info, warn or error", text)
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

package config_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/services/infra/config"
)

// productTable is the configuration table of PRODUCT.md: variable, flag, default.
// The secret key has no flag default: it is generated into the data directory.
var productTable = []struct{ env, flag, def string }{
	{"GRCONNECT_ADDR", "addr", ":8080"},
	{"GRCONNECT_BASE_URL", "base-url", "http://localhost:8080"},
	{"GRCONNECT_DATABASE", "database", "data/grconnect.db"},
	{"GRCONNECT_SECRET_KEY", "secret-key", ""},
	{"GRCONNECT_GETRESPONSE_AUTH_URL", "getresponse-auth-url", "https://app.getresponse.com/oauth2_authorize.html"},
	{"GRCONNECT_GETRESPONSE_API_URL", "getresponse-api-url", "https://api.getresponse.com/v3"},
	{"GRCONNECT_REFRESH_MARGIN", "refresh-margin", "10m"},
	{"GRCONNECT_KEEPALIVE", "keepalive", "24h"},
}

// extraSettings are grconnect's settings beyond PRODUCT.md's table.
var extraSettings = []struct{ env, flag, def string }{
	{"GRCONNECT_REFRESH_RATE", "refresh-rate", "20"},
	{"GRCONNECT_PROXY_MAX_WAIT", "proxy-max-wait", "5s"},
	{"GRCONNECT_REFRESH_CONCURRENCY", "refresh-concurrency", "4"},
	{"GRCONNECT_REFRESH_INTERVAL", "refresh-interval", "15s"},
	{"GRCONNECT_REFRESH_LEASE", "refresh-lease", "60s"},
	{"GRCONNECT_PREVIOUS_SECRET_KEYS", "previous-secret-keys", ""},
	{"GRCONNECT_TRUSTED_PROXIES", "trusted-proxies", ""},
	{"GRCONNECT_METRICS_TOKEN", "metrics-token", ""},
	{"GRCONNECT_WEBHOOK_ALLOW_PRIVATE", "webhook-allow-private", "false"},
	{"GRCONNECT_GETRESPONSE_ALLOW_PRIVATE", "getresponse-allow-private", "false"},
}

// mapEnv returns a getenv reading from m.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// bind returns a flag set with the settings bound to env; its output is discarded.
func bind(t *testing.T, env map[string]string) (*flag.FlagSet, *config.Loader) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, config.Bind(fs, mapEnv(env))
}

// load binds env, parses args and loads the configuration.
func load(t *testing.T, env map[string]string, args ...string) (*config.Config, error) {
	t.Helper()
	fs, loader := bind(t, env)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return loader.Load()
}

// mustLoad is load that fails the test on an error.
func mustLoad(t *testing.T, env map[string]string, args ...string) *config.Config {
	t.Helper()
	cfg, err := load(t, env, args...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

// testKey returns a valid 32-byte key and its standard base64 text.
func testKey() ([]byte, string) {
	key := bytes.Repeat([]byte{0x5a, 0xc3}, 16)
	return key, base64.StdEncoding.EncodeToString(key)
}

// field returns the loaded value of a setting as text, for table tests.
func field(c *config.Config, env string) string {
	switch env {
	case "GRCONNECT_ADDR":
		return c.Addr
	case "GRCONNECT_BASE_URL":
		return c.BaseURL
	case "GRCONNECT_DATABASE":
		return c.Database
	case "GRCONNECT_SECRET_KEY":
		if c.SecretKey == nil {
			return ""
		}
		return base64.StdEncoding.EncodeToString(c.SecretKey)
	case "GRCONNECT_GETRESPONSE_AUTH_URL":
		return c.GetResponseAuthURL
	case "GRCONNECT_GETRESPONSE_API_URL":
		return c.GetResponseAPIURL
	case "GRCONNECT_REFRESH_MARGIN":
		return c.RefreshMargin.String()
	case "GRCONNECT_KEEPALIVE":
		return c.Keepalive.String()
	}
	panic("unknown setting " + env)
}

func TestFlagsMatchProductTable(t *testing.T) {
	fs, _ := bind(t, nil)
	for _, s := range productTable {
		f := fs.Lookup(s.flag)
		if f == nil {
			t.Errorf("no --%s flag for %s", s.flag, s.env)
			continue
		}
		if f.DefValue != s.def {
			t.Errorf("--%s default = %q, want %q", s.flag, f.DefValue, s.def)
		}
		if !strings.Contains(f.Usage, s.env) {
			t.Errorf("--%s usage %q does not name %s", s.flag, f.Usage, s.env)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t, map[string]string{})
	want := map[string]string{
		"GRCONNECT_ADDR":                 ":8080",
		"GRCONNECT_BASE_URL":             "http://localhost:8080",
		"GRCONNECT_DATABASE":             "data/grconnect.db",
		"GRCONNECT_SECRET_KEY":           "", // generated later by LoadSecretKey
		"GRCONNECT_GETRESPONSE_AUTH_URL": "https://app.getresponse.com/oauth2_authorize.html",
		"GRCONNECT_GETRESPONSE_API_URL":  "https://api.getresponse.com/v3",
		"GRCONNECT_REFRESH_MARGIN":       (10 * time.Minute).String(),
		"GRCONNECT_KEEPALIVE":            (24 * time.Hour).String(),
	}
	for env, w := range want {
		if got := field(c, env); got != w {
			t.Errorf("default %s = %q, want %q", env, got, w)
		}
	}
	if c.DataDir != "data" {
		t.Errorf("DataDir = %q, want data (secret.key goes to data/secret.key)", c.DataDir)
	}
	if c.RedirectURL() != "http://localhost:8080/oauth/callback" {
		t.Errorf("RedirectURL = %q", c.RedirectURL())
	}
	if c.IsPostgres() || c.IsHTTPS() || c.Demo {
		t.Errorf("IsPostgres=%v IsHTTPS=%v Demo=%v, want all false", c.IsPostgres(), c.IsHTTPS(), c.Demo)
	}
}

// otherValues are valid non-default values for every setting: the text to set and
// the loaded value as field reports it.
func otherValues() map[string][2]string {
	_, keyText := testKey()
	return map[string][2]string{
		"GRCONNECT_ADDR":                 {"127.0.0.1:9090", "127.0.0.1:9090"},
		"GRCONNECT_BASE_URL":             {"https://connect.example.com/", "https://connect.example.com"},
		"GRCONNECT_DATABASE":             {"/srv/grconnect/db.sqlite", "/srv/grconnect/db.sqlite"},
		"GRCONNECT_SECRET_KEY":           {keyText, keyText},
		"GRCONNECT_GETRESPONSE_AUTH_URL": {"https://app.getresponse.pl/oauth2_authorize.html", "https://app.getresponse.pl/oauth2_authorize.html"},
		"GRCONNECT_GETRESPONSE_API_URL":  {"https://api3.getresponse360.com/v3/", "https://api3.getresponse360.com/v3"},
		"GRCONNECT_REFRESH_MARGIN":       {"90s", (90 * time.Second).String()},
		"GRCONNECT_KEEPALIVE":            {"72h", (72 * time.Hour).String()},
	}
}

func TestEnvValuesAreUsed(t *testing.T) {
	env := map[string]string{}
	for k, v := range otherValues() {
		env[k] = v[0]
	}
	c := mustLoad(t, env)
	for k, v := range otherValues() {
		if got := field(c, k); got != v[1] {
			t.Errorf("%s=%q loaded as %q, want %q", k, v[0], got, v[1])
		}
	}
	if !c.IsHTTPS() {
		t.Error("IsHTTPS = false for an https base URL")
	}
	if c.RedirectURL() != "https://connect.example.com/oauth/callback" {
		t.Errorf("RedirectURL = %q", c.RedirectURL())
	}
	if c.DataDir != "/srv/grconnect" {
		t.Errorf("DataDir = %q, want /srv/grconnect", c.DataDir)
	}
}

func TestFlagBeatsEnv(t *testing.T) {
	envValues := otherValues()
	flagValues := map[string][2]string{
		"GRCONNECT_ADDR":                 {"127.0.0.1:7070", "127.0.0.1:7070"},
		"GRCONNECT_BASE_URL":             {"http://flag.example.com:81", "http://flag.example.com:81"},
		"GRCONNECT_DATABASE":             {"flagdir/flag.db", "flagdir/flag.db"},
		"GRCONNECT_SECRET_KEY":           {base64.StdEncoding.EncodeToString(make([]byte, 32)), base64.StdEncoding.EncodeToString(make([]byte, 32))},
		"GRCONNECT_GETRESPONSE_AUTH_URL": {"http://auth.flag.test/authorize", "http://auth.flag.test/authorize"},
		"GRCONNECT_GETRESPONSE_API_URL":  {"http://api.flag.test/v3", "http://api.flag.test/v3"},
		"GRCONNECT_REFRESH_MARGIN":       {"1m", time.Minute.String()},
		"GRCONNECT_KEEPALIVE":            {"2h", (2 * time.Hour).String()},
	}
	for _, s := range productTable {
		t.Run(s.env, func(t *testing.T) {
			env := map[string]string{s.env: envValues[s.env][0]}
			fv := flagValues[s.env]
			c := mustLoad(t, env, "--"+s.flag, fv[0])
			if got := field(c, s.env); got != fv[1] {
				t.Errorf("%s=%q with --%s=%q loaded as %q, want the flag's %q", s.env, envValues[s.env][0], s.flag, fv[0], got, fv[1])
			}
		})
	}
}

func TestInvalidSettingNamesIt(t *testing.T) {
	_, keyText := testKey()
	shortKey := base64.StdEncoding.EncodeToString(make([]byte, 16))
	tests := []struct {
		name, env, value string
	}{
		{"addr without port", "GRCONNECT_ADDR", "8080"},
		{"addr not host:port", "GRCONNECT_ADDR", "localhost"},
		{"addr empty port", "GRCONNECT_ADDR", "localhost:"},
		{"addr port not a number", "GRCONNECT_ADDR", "localhost:abc"},
		{"addr port out of range", "GRCONNECT_ADDR", ":99999"},
		{"base url ftp", "GRCONNECT_BASE_URL", "ftp://example.com"},
		{"base url relative", "GRCONNECT_BASE_URL", "example.com"},
		{"base url with path", "GRCONNECT_BASE_URL", "https://example.com/grconnect"},
		{"base url with query", "GRCONNECT_BASE_URL", "https://example.com/?a=b"},
		{"base url with fragment", "GRCONNECT_BASE_URL", "https://example.com#top"},
		{"base url with credentials", "GRCONNECT_BASE_URL", "https://user:hunter2-secret@example.com"},
		{"auth url not http", "GRCONNECT_GETRESPONSE_AUTH_URL", "javascript:alert(1)"},
		{"auth url without host", "GRCONNECT_GETRESPONSE_AUTH_URL", "https:///authorize"},
		{"api url relative", "GRCONNECT_GETRESPONSE_API_URL", "/v3"},
		{"api url not a url", "GRCONNECT_GETRESPONSE_API_URL", "http://[::1"},
		{"postgres url broken", "GRCONNECT_DATABASE", "postgres://%zz"},
		{"refresh margin negative", "GRCONNECT_REFRESH_MARGIN", "-1m"},
		{"refresh margin bare number", "GRCONNECT_REFRESH_MARGIN", "-1"},
		{"refresh margin zero", "GRCONNECT_REFRESH_MARGIN", "0s"},
		{"refresh margin unparsable", "GRCONNECT_REFRESH_MARGIN", "ten minutes"},
		{"keepalive zero", "GRCONNECT_KEEPALIVE", "0"},
		{"keepalive negative", "GRCONNECT_KEEPALIVE", "-24h"},
		{"keepalive unparsable", "GRCONNECT_KEEPALIVE", "1d"},
		{"refresh rate zero", "GRCONNECT_REFRESH_RATE", "0"},
		{"refresh rate above GetResponse's limit", "GRCONNECT_REFRESH_RATE", "81"},
		{"refresh rate not a number", "GRCONNECT_REFRESH_RATE", "fast"},
		{"refresh concurrency zero", "GRCONNECT_REFRESH_CONCURRENCY", "0"},
		{"refresh concurrency fractional", "GRCONNECT_REFRESH_CONCURRENCY", "2.5"},
		{"refresh interval too short", "GRCONNECT_REFRESH_INTERVAL", "1ms"},
		{"refresh interval unparsable", "GRCONNECT_REFRESH_INTERVAL", "often"},
		{"refresh lease too short", "GRCONNECT_REFRESH_LEASE", "1s"},
		{"refresh lease too long", "GRCONNECT_REFRESH_LEASE", "1h"},
		{"refresh lease unparsable", "GRCONNECT_REFRESH_LEASE", "a minute"},
		{"proxy max wait negative", "GRCONNECT_PROXY_MAX_WAIT", "-1s"},
		{"proxy max wait over a minute", "GRCONNECT_PROXY_MAX_WAIT", "2m"},
		{"proxy max wait bare number", "GRCONNECT_PROXY_MAX_WAIT", "5"},
		{"secret key not base64", "GRCONNECT_SECRET_KEY", "not*base64*at*all!" + keyText[:8]},
		{"secret key too short", "GRCONNECT_SECRET_KEY", shortKey},
		{"secret key too long", "GRCONNECT_SECRET_KEY", base64.StdEncoding.EncodeToString(make([]byte, 48))},
		{"previous key too short", "GRCONNECT_PREVIOUS_SECRET_KEYS", keyText + "," + shortKey},
		{"previous key not base64", "GRCONNECT_PREVIOUS_SECRET_KEYS", "not*base64*at*all!" + keyText[:8]},
		{"trusted proxy not a CIDR", "GRCONNECT_TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal"},
		{"trusted proxy bad mask", "GRCONNECT_TRUSTED_PROXIES", "10.0.0.0/33"},
		{"metrics token too short", "GRCONNECT_METRICS_TOKEN", "short"},
		{"metrics token with a space", "GRCONNECT_METRICS_TOKEN", "a token with spaces in it"},
		{"webhook allow private not a bool", "GRCONNECT_WEBHOOK_ALLOW_PRIVATE", "sometimes"},
		{"getresponse allow private not a bool", "GRCONNECT_GETRESPONSE_ALLOW_PRIVATE", "sometimes"},
		{"trusted proxies: every IPv4 address", "GRCONNECT_TRUSTED_PROXIES", "10.0.0.5, 0.0.0.0/0"},
		{"trusted proxies: every IPv6 address", "GRCONNECT_TRUSTED_PROXIES", "::/0"},
		{"trusted proxies: every IPv4 address, mapped", "GRCONNECT_TRUSTED_PROXIES", "::ffff:0:0/96"},
	}
	flagOf := map[string]string{}
	for _, s := range append(productTable[:len(productTable):len(productTable)], extraSettings...) {
		flagOf[s.env] = s.flag
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(t *testing.T, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s=%q accepted", tt.env, tt.value)
				}
				msg := err.Error()
				if !strings.Contains(msg, tt.env) || !strings.Contains(msg, "--"+flagOf[tt.env]) {
					t.Errorf("error %q does not name %s and --%s", msg, tt.env, flagOf[tt.env])
				}
				if strings.Contains(msg, "\n") {
					t.Errorf("error is not one line: %q", msg)
				}
				if hiddenSetting[tt.env] && strings.Contains(msg, tt.value) {
					t.Errorf("error repeats the configured key: %q", msg)
				}
				if strings.Contains(msg, "hunter2-secret") {
					t.Errorf("error repeats a password from a URL: %q", msg)
				}
			}
			t.Run("env", func(t *testing.T) {
				_, err := load(t, map[string]string{tt.env: tt.value})
				check(t, err)
			})
			t.Run("flag", func(t *testing.T) {
				_, err := load(t, nil, "--"+flagOf[tt.env]+"="+tt.value)
				check(t, err)
			})
		})
	}
}

func TestSecretKeyEncodings(t *testing.T) {
	key, _ := testKey()
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		text := enc.EncodeToString(key)
		c := mustLoad(t, map[string]string{"GRCONNECT_SECRET_KEY": " " + text + "\n"})
		if !bytes.Equal(c.SecretKey, key) {
			t.Errorf("key %q loaded as %x, want %x", text, c.SecretKey, key)
		}
	}
}

func TestDataDir(t *testing.T) {
	tests := []struct {
		database, dataDir string
		postgres          bool
	}{
		{"postgres://grconnect:pw@db.internal:5432/grconnect?sslmode=disable", "data", true},
		{"postgresql://db.internal/grconnect", "data", true},
		{"/var/lib/grconnect/grconnect.db", "/var/lib/grconnect", false},
		{"state/sub/app.db", filepath.Join("state", "sub"), false},
		{"grconnect.db", ".", false},
	}
	for _, tt := range tests {
		t.Run(tt.database, func(t *testing.T) {
			c := mustLoad(t, map[string]string{"GRCONNECT_DATABASE": tt.database})
			if c.DataDir != tt.dataDir {
				t.Errorf("DataDir = %q, want %q", c.DataDir, tt.dataDir)
			}
			if c.IsPostgres() != tt.postgres {
				t.Errorf("IsPostgres = %v, want %v", c.IsPostgres(), tt.postgres)
			}
		})
	}
}

func TestPrepareDataDir(t *testing.T) {
	dir := t.TempDir()
	c := mustLoad(t, map[string]string{"GRCONNECT_DATABASE": filepath.Join(dir, "a", "b", "grconnect.db")})
	if err := c.PrepareDataDir(); err != nil {
		t.Fatalf("PrepareDataDir: %v", err)
	}
	info, err := os.Stat(filepath.Join(dir, "a", "b"))
	if err != nil || !info.IsDir() {
		t.Fatalf("data directory not created: %v", err)
	}
	// The writability probe leaves nothing behind.
	if entries, _ := os.ReadDir(filepath.Join(dir, "a", "b")); len(entries) != 0 {
		t.Errorf("PrepareDataDir left %d files behind", len(entries))
	}
}

func TestPrepareDataDirUnderFileFails(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "regular-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, map[string]string{"GRCONNECT_DATABASE": filepath.Join(file, "data", "grconnect.db")})
	err := c.PrepareDataDir()
	if err == nil {
		t.Fatal("PrepareDataDir succeeded under a regular file")
	}
	msg := err.Error()
	if !strings.Contains(msg, "GRCONNECT_DATABASE") || !strings.Contains(msg, "--database") {
		t.Errorf("error %q does not name GRCONNECT_DATABASE (--database)", msg)
	}
	if strings.Contains(msg, "\n") || strings.Contains(msg, "<nil>") || strings.Contains(msg, "%!") {
		t.Errorf("error is not a clean one-line message: %q", msg)
	}
}

func TestLoadSecretKeyCreatesOnceAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"GRCONNECT_DATABASE": filepath.Join(dir, "grconnect.db")}
	path := filepath.Join(dir, "secret.key")

	first := mustLoad(t, env)
	if err := first.PrepareDataDir(); err != nil {
		t.Fatal(err)
	}
	created, gotPath, err := first.LoadSecretKey()
	if err != nil {
		t.Fatalf("LoadSecretKey: %v", err)
	}
	if !created || gotPath != path {
		t.Fatalf("first LoadSecretKey = created %v, path %q; want true, %q", created, gotPath, path)
	}
	if len(first.SecretKey) != 32 {
		t.Fatalf("generated key has %d bytes, want 32", len(first.SecretKey))
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("secret.key mode = %v, want 0600", perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data))); err != nil || !bytes.Equal(got, first.SecretKey) {
		t.Errorf("secret.key holds %q, not the base64 of the key in use", data)
	}

	second := mustLoad(t, env)
	created, _, err = second.LoadSecretKey()
	if err != nil {
		t.Fatalf("second LoadSecretKey: %v", err)
	}
	if created {
		t.Error("second LoadSecretKey created a new key")
	}
	if !bytes.Equal(second.SecretKey, first.SecretKey) {
		t.Error("second LoadSecretKey returned a different key")
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, data) {
		t.Error("secret.key was rewritten")
	}
}

func TestLoadSecretKeyConfiguredWritesNoFile(t *testing.T) {
	key, keyText := testKey()
	dir := t.TempDir()
	c := mustLoad(t, map[string]string{"GRCONNECT_DATABASE": filepath.Join(dir, "grconnect.db"), "GRCONNECT_SECRET_KEY": keyText})
	created, _, err := c.LoadSecretKey()
	if err != nil || created {
		t.Fatalf("LoadSecretKey = created %v, err %v; want false, nil", created, err)
	}
	if !bytes.Equal(c.SecretKey, key) {
		t.Error("the configured key was replaced")
	}
	if _, err := os.Stat(filepath.Join(dir, "secret.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("secret.key written although a key is configured (stat: %v)", err)
	}
}

func TestLoadSecretKeyCorruptFileNamesSetting(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "secret.key"), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, map[string]string{"GRCONNECT_DATABASE": filepath.Join(dir, "grconnect.db")})
	_, _, err := c.LoadSecretKey()
	if err == nil {
		t.Fatal("a corrupt secret.key was accepted")
	}
	if !strings.Contains(err.Error(), "GRCONNECT_SECRET_KEY") || !strings.Contains(err.Error(), "--secret-key") {
		t.Errorf("error %q does not name GRCONNECT_SECRET_KEY (--secret-key)", err)
	}
}

func TestHelpHidesSecretKey(t *testing.T) {
	_, keyText := testKey()
	env := map[string]string{"GRCONNECT_SECRET_KEY": keyText, "GRCONNECT_BASE_URL": "https://shown.example.com"}
	var out bytes.Buffer
	fs := flag.NewFlagSet("grconnect serve", flag.ContinueOnError)
	fs.SetOutput(&out)
	config.Bind(fs, mapEnv(env))
	if err := fs.Parse([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(--help) = %v, want flag.ErrHelp", err)
	}
	help := out.String()
	// The help is printed, and shows configured values for ordinary settings...
	if !strings.Contains(help, "-secret-key") || !strings.Contains(help, "https://shown.example.com") {
		t.Fatalf("help output lacks the expected flags and defaults:\n%s", help)
	}
	// ...but never the key, in any encoding.
	key, _ := testKey()
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding} {
		if strings.Contains(help, strings.TrimRight(enc.EncodeToString(key), "=")) {
			t.Errorf("help output shows the configured secret key:\n%s", help)
		}
	}
}

// TestProxyMaxWait: 5 s by default, 0s (never wait) up to a minute, from the
// variable or the flag.
func TestProxyMaxWait(t *testing.T) {
	if cfg := mustLoad(t, nil); cfg.ProxyMaxWait != 5*time.Second {
		t.Fatalf("default = %v", cfg.ProxyMaxWait)
	}
	if cfg := mustLoad(t, map[string]string{"GRCONNECT_PROXY_MAX_WAIT": "0s"}); cfg.ProxyMaxWait != 0 {
		t.Fatalf("0s = %v", cfg.ProxyMaxWait)
	}
	if cfg := mustLoad(t, map[string]string{"GRCONNECT_PROXY_MAX_WAIT": "2s"}, "--proxy-max-wait=1m"); cfg.ProxyMaxWait != time.Minute {
		t.Fatalf("flag over variable = %v", cfg.ProxyMaxWait)
	}
}

func TestRefresherSettings(t *testing.T) {
	cfg := mustLoad(t, nil)
	if cfg.RefreshRate != 20 || cfg.RefreshConcurrency != 4 || cfg.RefreshInterval != 15*time.Second || cfg.RefreshLease != time.Minute {
		t.Fatalf("defaults = %v/s, %d workers, every %v, lease %v", cfg.RefreshRate, cfg.RefreshConcurrency, cfg.RefreshInterval, cfg.RefreshLease)
	}
	cfg = mustLoad(t, map[string]string{"GRCONNECT_REFRESH_RATE": "2.5", "GRCONNECT_REFRESH_CONCURRENCY": "8"}, "--refresh-interval=500ms", "--refresh-lease=8s")
	if cfg.RefreshRate != 2.5 || cfg.RefreshConcurrency != 8 || cfg.RefreshInterval != 500*time.Millisecond || cfg.RefreshLease != 8*time.Second {
		t.Fatalf("configured = %v/s, %d workers, every %v, lease %v", cfg.RefreshRate, cfg.RefreshConcurrency, cfg.RefreshInterval, cfg.RefreshLease)
	}
}

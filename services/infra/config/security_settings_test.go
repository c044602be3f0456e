package config_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grconnect/grconnect/services/infra/config"
)

// hiddenSetting are the settings whose values never appear in errors or -help.
var hiddenSetting = map[string]bool{"GRCONNECT_SECRET_KEY": true, "GRCONNECT_PREVIOUS_SECRET_KEYS": true, "GRCONNECT_METRICS_TOKEN": true}

func TestSecuritySettings(t *testing.T) {
	key, keyText := testKey()
	other := bytes.Repeat([]byte{7}, 32)
	cfg := mustLoad(t, map[string]string{
		"GRCONNECT_PREVIOUS_SECRET_KEYS":  keyText + ", " + base64.RawURLEncoding.EncodeToString(other),
		"GRCONNECT_TRUSTED_PROXIES":       "10.0.0.0/8, 192.0.2.7,2001:db8::/32",
		"GRCONNECT_METRICS_TOKEN":         "metrics-token-0123456789",
		"GRCONNECT_WEBHOOK_ALLOW_PRIVATE": "true",
	})
	if len(cfg.PreviousSecretKeys) != 2 || !bytes.Equal(cfg.PreviousSecretKeys[0], key) || !bytes.Equal(cfg.PreviousSecretKeys[1], other) {
		t.Errorf("previous keys = %d", len(cfg.PreviousSecretKeys))
	}
	var nets []string
	for _, n := range cfg.TrustedProxies {
		nets = append(nets, n.String())
	}
	if strings.Join(nets, " ") != "10.0.0.0/8 192.0.2.7/32 2001:db8::/32" {
		t.Errorf("trusted proxies = %v", nets)
	}
	if cfg.MetricsToken != "metrics-token-0123456789" || !cfg.WebhookAllowPrivate {
		t.Errorf("metrics token %q, webhook allow private %v", cfg.MetricsToken, cfg.WebhookAllowPrivate)
	}
	// Defaults: nothing trusted, nothing previous, /metrics open, no private webhooks.
	def := mustLoad(t, nil)
	if def.PreviousSecretKeys != nil || def.TrustedProxies != nil || def.MetricsToken != "" || def.WebhookAllowPrivate {
		t.Errorf("defaults = %+v", def)
	}
	if def.GetResponseAllowPrivate {
		t.Error("private GetResponse addresses allowed by default")
	}
	if !mustLoad(t, map[string]string{"GRCONNECT_GETRESPONSE_ALLOW_PRIVATE": "true"}).GetResponseAllowPrivate {
		t.Error("GRCONNECT_GETRESPONSE_ALLOW_PRIVATE=true not applied")
	}
	// Flags work the same way.
	flagged := mustLoad(t, nil, "--trusted-proxies=127.0.0.1/32", "--webhook-allow-private", "--getresponse-allow-private")
	if len(flagged.TrustedProxies) != 1 || !flagged.WebhookAllowPrivate || !flagged.GetResponseAllowPrivate {
		t.Errorf("flags not applied: %+v", flagged)
	}
}

func TestHelpHidesPreviousKeysAndMetricsToken(t *testing.T) {
	_, keyText := testKey()
	var out bytes.Buffer
	fs := flag.NewFlagSet("grconnect serve", flag.ContinueOnError)
	fs.SetOutput(&out)
	config.Bind(fs, mapEnv(map[string]string{"GRCONNECT_PREVIOUS_SECRET_KEYS": keyText, "GRCONNECT_METRICS_TOKEN": "metrics-token-0123456789"}))
	if err := fs.Parse([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "-previous-secret-keys") || !strings.Contains(out.String(), "-metrics-token") {
		t.Fatalf("help lacks the flags:\n%s", out.String())
	}
	if strings.Contains(out.String(), strings.TrimRight(keyText, "=")) || strings.Contains(out.String(), "metrics-token-0123456789") {
		t.Errorf("help shows a configured secret:\n%s", out.String())
	}
}

// TestKeyFileAndPreviousKeyFile: a key from secret.key also reads the keys a file
// rotation retired (secret.previous.key); KeyFileMissing says when a key would be made.
func TestKeyFileAndPreviousKeyFile(t *testing.T) {
	dir := t.TempDir()
	cfg := mustLoad(t, map[string]string{"GRCONNECT_DATABASE": filepath.Join(dir, "grconnect.db")})
	if missing, err := cfg.KeyFileMissing(); err != nil || !missing {
		t.Fatalf("KeyFileMissing = %v, %v; want true", missing, err)
	}
	_, keyText := testKey()
	if err := os.WriteFile(cfg.KeyFile(), []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.PreviousKeyFile(), []byte(keyText+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if missing, _ := cfg.KeyFileMissing(); missing {
		t.Fatal("KeyFileMissing with a key file")
	}
	if created, _, err := cfg.LoadSecretKey(); err != nil || created {
		t.Fatalf("LoadSecretKey = %v, %v", created, err)
	}
	if len(cfg.PreviousSecretKeys) != 1 {
		t.Fatalf("previous keys from the file: %d", len(cfg.PreviousSecretKeys))
	}
	os.WriteFile(cfg.PreviousKeyFile(), []byte("garbage\n"), 0o600)
	bad := mustLoad(t, map[string]string{"GRCONNECT_DATABASE": filepath.Join(dir, "grconnect.db")})
	if _, _, err := bad.LoadSecretKey(); err == nil || !strings.Contains(err.Error(), "GRCONNECT_PREVIOUS_SECRET_KEYS") || strings.Contains(err.Error(), "\n") {
		t.Errorf("a corrupt previous-key file: %v", err)
	}
	// A configured key never reads the files.
	configured := mustLoad(t, map[string]string{"GRCONNECT_DATABASE": filepath.Join(dir, "grconnect.db"), "GRCONNECT_SECRET_KEY": keyText})
	if missing, _ := configured.KeyFileMissing(); missing || !configured.KeyConfigured() {
		t.Error("a configured key counts as a missing file")
	}
	if _, _, err := configured.LoadSecretKey(); err != nil || configured.PreviousSecretKeys != nil {
		t.Errorf("a configured key read the previous-key file: %v", err)
	}
}

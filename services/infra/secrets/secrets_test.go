package secrets

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newBox(t *testing.T) *Box {
	t.Helper()
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	b, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpenRoundTrip(t *testing.T) {
	b := newBox(t)
	aad := AAD("connection", "con_1", "access_token")
	sealed, err := b.Seal("03807cb390319329bdf6c777d4dfae9c0d3b3c35", aad)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "03807cb3") {
		t.Fatalf("sealed value contains plaintext: %s", sealed)
	}
	if !strings.HasPrefix(sealed, "v1."+b.KeyID()+".") {
		t.Fatalf("sealed value lacks version and key id: %s", sealed)
	}
	again, _ := b.Seal("03807cb390319329bdf6c777d4dfae9c0d3b3c35", aad)
	if again == sealed {
		t.Fatal("two seals of the same value are identical: nonce is not random")
	}
	got, err := b.Open(sealed, aad)
	if err != nil || got != "03807cb390319329bdf6c777d4dfae9c0d3b3c35" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if s, _ := b.Seal("", aad); s != "" {
		t.Fatalf("empty plaintext sealed to %q", s)
	}
}

func TestOpenRejects(t *testing.T) {
	b := newBox(t)
	aad := AAD("app", "app_1", "client_secret")
	sealed, _ := b.Seal("top-secret", aad)
	raw, _ := base64.RawURLEncoding.DecodeString(sealed[strings.LastIndex(sealed, ".")+1:])
	raw[len(raw)-1] ^= 1
	flipped := sealed[:strings.LastIndex(sealed, ".")+1] + base64.RawURLEncoding.EncodeToString(raw)

	other := newBox(t)
	foreign, _ := other.Seal("top-secret", aad)

	for name, tc := range map[string]struct{ sealed, aad string }{
		"tampered byte":     {flipped, aad},
		"other record":      {sealed, AAD("app", "app_2", "client_secret")},
		"other field":       {sealed, AAD("app", "app_1", "access_token")},
		"unknown key":       {foreign, aad},
		"garbage":           {"v1.zz.!!!", aad},
		"truncated":         {sealed[:len(sealed)-10], aad},
		"unknown version":   {"v9" + sealed[2:], aad},
		"missing separator": {"v1", aad},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := b.Open(tc.sealed, tc.aad); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Open = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestDeriveAndFingerprint(t *testing.T) {
	b := newBox(t)
	if bytes.Equal(b.Derive("session-auth"), b.Derive("session-enc")) {
		t.Fatal("different purposes derived the same key")
	}
	if len(b.Derive("x")) != 32 {
		t.Fatal("derived key is not 32 bytes")
	}
	fp := b.Fingerprint("token-a")
	if len(fp) != 8 || fp == b.Fingerprint("token-b") || fp != b.Fingerprint("token-a") {
		t.Fatalf("fingerprint not stable or not distinct: %q", fp)
	}
	if newBox(t).Fingerprint("token-a") == fp {
		t.Fatal("fingerprint does not depend on the key")
	}
}

func TestParseKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key) + "\n",
	} {
		got, err := ParseKey(s)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("ParseKey(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "not base64 at all!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := ParseKey(s); err == nil {
			t.Fatalf("ParseKey(%q) accepted a bad key", s)
		}
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "secret.key")
	key, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created || len(key) != KeySize {
		t.Fatalf("first call: %v %v %v", len(key), created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, want 0600", st.Mode().Perm())
	}
	again, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created || !bytes.Equal(again, key) {
		t.Fatalf("second call did not return the stored key: created=%v err=%v", created, err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("a corrupt key file was accepted")
	}
}

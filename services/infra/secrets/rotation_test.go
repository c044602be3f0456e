package secrets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPreviousKeysOpenCurrentSeals: a box with previous keys opens what they
// sealed and seals only with the current key.
func TestPreviousKeysOpenCurrentSeals(t *testing.T) {
	old, cur := newBox(t), newBox(t)
	aad := AAD("connection", "con_1", "refresh_token")
	sealedOld, _ := old.Seal("refresh-token-value", aad)

	if _, err := cur.Open(sealedOld, aad); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a box without the old key opened its value: %v", err)
	}
	both, err := New(cur.current.root, old.current.root)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := both.Open(sealedOld, aad); err != nil || got != "refresh-token-value" {
		t.Fatalf("Open with the previous key = %q, %v", got, err)
	}
	sealedNew, _ := both.Seal("refresh-token-value", aad)
	if SealedKeyID(sealedNew) != cur.KeyID() || !both.IsCurrent(sealedNew) || both.IsCurrent(sealedOld) {
		t.Fatalf("sealed with key %q, want the current %q", SealedKeyID(sealedNew), cur.KeyID())
	}
	if got, err := cur.Open(sealedNew, aad); err != nil || got != "refresh-token-value" {
		t.Fatalf("the current key alone cannot open the new value: %q, %v", got, err)
	}
	if !both.HasPrevious() || cur.HasPrevious() {
		t.Error("HasPrevious is wrong")
	}
	// Subkeys: the current one first, the previous ones still listed.
	all := both.DeriveAll("known-browser")
	if len(all) != 2 || !bytes.Equal(all[0], cur.Derive("known-browser")) || !bytes.Equal(all[1], old.Derive("known-browser")) {
		t.Fatal("DeriveAll does not list the current subkey first, then the previous")
	}
	if _, err := New(cur.current.root, []byte("short")); err == nil {
		t.Fatal("a short previous key was accepted")
	}
}

// TestRotateKeyFile: the old key moves to the previous-keys file before the key
// file changes, and both files stay 0600.
func TestRotateKeyFile(t *testing.T) {
	dir := t.TempDir()
	path, prev := filepath.Join(dir, "secret.key"), filepath.Join(dir, "secret.previous.key")
	first, _, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	newKey, oldKey, err := RotateKeyFile(path, prev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(oldKey, first) || bytes.Equal(newKey, first) {
		t.Fatal("RotateKeyFile did not retire the stored key for a new one")
	}
	if got, _, _ := LoadOrCreateKeyFile(path); !bytes.Equal(got, newKey) {
		t.Fatal("secret.key does not hold the new key")
	}
	list, err := ReadKeyList(prev)
	if err != nil || len(list) != 1 || !bytes.Equal(list[0], first) {
		t.Fatalf("previous keys = %d, %v; want the old key", len(list), err)
	}
	// A second rotation keeps both retired keys.
	third, _, err := RotateKeyFile(path, prev)
	if err != nil {
		t.Fatal(err)
	}
	list, _ = ReadKeyList(prev)
	if len(list) != 2 || !bytes.Equal(list[0], first) || !bytes.Equal(list[1], newKey) || bytes.Equal(third, newKey) {
		t.Fatalf("after two rotations the previous keys are %d", len(list))
	}
	for _, p := range []string{path, prev} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", filepath.Base(p), st.Mode().Perm(), err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("rotation left temporary files: %d entries", len(entries))
	}
	if missing, err := ReadKeyList(filepath.Join(dir, "none")); err != nil || missing != nil {
		t.Errorf("a missing list = %v, %v; want empty", missing, err)
	}
	os.WriteFile(prev, []byte("# comment\n\n"+base64.StdEncoding.EncodeToString([]byte("short"))+"\n"), 0o600)
	if _, err := ReadKeyList(prev); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("a bad line was accepted or not located: %v", err)
	}
}

package main

import (
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var setupURLLine = regexp.MustCompile(`msg="open the setup URL to create the first operator" url=(\S+)`)

// TestServePrintsSetupURL: a fresh install prints a one-time setup URL, and /setup
// opens only with its token; once an operator exists (here made by the command
// line, which needs no token) no URL is printed.
func TestServePrintsSetupURL(t *testing.T) {
	env, _ := dbEnv(t)
	s := startServe(t, env)
	m := setupURLLine.FindStringSubmatch(s.log.String())
	if m == nil {
		t.Fatalf("no setup URL in the log:\n%s", s.log)
	}
	printed := strings.Trim(m[1], `"`)
	path := printed[strings.Index(printed, "/setup?token="):]
	if code, _ := get(t, s.url+"/setup"); code != http.StatusForbidden {
		t.Errorf("/setup without the token = %d, want 403", code)
	}
	if code, body := get(t, s.url+"/setup?token=wrong"); code != http.StatusForbidden || strings.Contains(body, `name="password"`) {
		t.Errorf("/setup with a wrong token = %d", code)
	}
	if code, body := get(t, s.url+path); code != http.StatusOK || !strings.Contains(body, `name="setup_token"`) {
		t.Errorf("the printed setup URL = %d", code)
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, env, "a long password 123\n", "operator", "create", "--email", "ann@example.com", "--password-stdin"); r.err != nil {
		t.Fatalf("operator create: %v", r.err)
	}
	again := startServe(t, env)
	if setupURLLine.MatchString(again.log.String()) {
		t.Errorf("a setup URL was printed although an operator exists:\n%s", again.log)
	}
}

// TestDatabaseFilesArePrivate: a new install's data directory is 0700 and its
// database files (main, WAL, shared memory) 0600, whatever the umask leaves.
func TestDatabaseFilesArePrivate(t *testing.T) {
	env, dbPath := dbEnv(t)
	s := startServe(t, env)
	// A write, so that the WAL exists.
	if r := runCmd(t, env, "", "apikey", "create", "--name", "backend"); r.err != nil {
		t.Fatal(r.err)
	}
	if st, err := os.Stat(filepath.Dir(dbPath)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %v (%v), want 0700", st.Mode().Perm(), err)
	}
	files, _ := filepath.Glob(dbPath + "*")
	if len(files) < 2 {
		t.Fatalf("database files: %v", files)
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", filepath.Base(f), st.Mode().Perm())
		}
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
}

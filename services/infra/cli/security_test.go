package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

var setupURLLine = regexp.MustCompile(`msg="open the setup URL to create the first operator" url=(\S+)`)

// TestServePrintsSetupURL: a fresh install prints a one-time setup URL, and /setup
// opens only with its token; once an operator exists (here made by the command
// line, which needs no token) no URL is printed.
func TestServePrintsSetupURL(t *testing.T) {
	env, _ := dbEnv(t)
	s := startServe(t, env)
	m := setupURLLine.FindStringSubmatch(waitForLog(t, s, "┘"))
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

// waitForLog waits until serve's output holds want, and returns it.
func waitForLog(t *testing.T, s *serveProc, want string) string {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		if out := s.log.String(); strings.Contains(out, want) || time.Now().After(deadline) {
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServeFramesTheSetupURLLast: a fresh demo prints its setup URL last, in a
// framed block after the server listens, with no warning from the seeding before
// it; with JSON logs only the log line says it (a frame would break the lines).
func TestServeFramesTheSetupURLLast(t *testing.T) {
	env, _ := dbEnv(t)
	env["GRCONNECT_SECRET_KEY"] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, secrets.KeySize))
	s := startServe(t, env, "--demo")
	waitForLog(t, s, "┘")
	time.Sleep(300 * time.Millisecond) // anything the start logs late would be after the frame
	out := s.log.String()
	m := setupURLLine.FindStringSubmatch(out)
	top, bottom := strings.Index(out, "┌"), strings.LastIndex(out, "┘")
	if m == nil || top < 0 || bottom < 0 {
		t.Fatalf("no framed setup URL:\n%s", out)
	}
	frame := out[top:bottom]
	if !strings.Contains(frame, strings.Trim(m[1], `"`)) {
		t.Errorf("the frame lacks the setup URL %s:\n%s", m[1], frame)
	}
	if rest := strings.TrimSpace(out[bottom+len("┘"):]); rest != "" {
		t.Errorf("printed after the setup URL:\n%s", rest)
	}
	before := out[:top]
	if !strings.Contains(before, "seeded demo connections") || !strings.Contains(before, "grconnect listening") {
		t.Errorf("the frame does not come after the seeding and the listening:\n%s", before)
	}
	for _, line := range strings.Split(before, "\n") {
		// GORM's "SLOW SQL" is the machine's load (a CI run's parallel packages),
		// not something the start chose to say.
		if strings.Contains(line, "level=WARN") && !strings.Contains(line, "open the setup URL") && !strings.Contains(line, "SLOW SQL") {
			t.Errorf("a warning before the setup URL: %s", line)
		}
	}
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}

	jsonEnv, _ := dbEnv(t)
	jsonEnv["GRCONNECT_LOG_FORMAT"] = "json"
	ctx, cancel := context.WithCancel(context.Background())
	j := &serveProc{log: newListenLog(), cancel: cancel, done: make(chan error, 1)}
	go func() {
		j.done <- run(ctx, []string{"grconnect", "serve", "--addr", "127.0.0.1:0"}, testEnv(jsonEnv), strings.NewReader(""), io.Discard, j.log)
	}()
	out = waitForLog(t, j, `"msg":"open the setup URL to create the first operator"`)
	cancel()
	if err := <-j.done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"msg":"open the setup URL to create the first operator"`) || strings.Contains(out, "┌") {
		t.Errorf("JSON logs: want the setup URL's line and no frame:\n%s", out)
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

// keyText returns a base64 key made of b.
func keyText(b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, secrets.KeySize))
}

// mustOneLine fails unless err is a one-line error naming want.
func mustOneLine(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %s", err, w)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

// TestServeRefusesAWrongKey: a server started with a key that opens nothing stored
// stops at once with one line naming GRCONNECT_SECRET_KEY; with the old key listed
// as previous it starts.
func TestServeRefusesAWrongKey(t *testing.T) {
	env, _ := dbEnv(t)
	env["GRCONNECT_SECRET_KEY"] = keyText(1)
	if r := runCmd(t, env, "client-secret-1\n", "app", "create", "--name", "Acme", "--client-id", "acme", "--client-secret-stdin"); r.err != nil {
		t.Fatal(r.err)
	}
	env["GRCONNECT_SECRET_KEY"] = keyText(2)
	r := runCmd(t, env, "", "serve", "--addr", "127.0.0.1:0")
	mustOneLine(t, r.err, "GRCONNECT_SECRET_KEY", "--secret-key", "opens nothing stored")
	// Other commands that seal refuse too: nothing is written with the wrong key.
	r = runCmd(t, env, "client-secret-2\n", "app", "create", "--name", "Other", "--client-id", "o", "--client-secret-stdin")
	mustOneLine(t, r.err, "GRCONNECT_SECRET_KEY")
	// During a rotation the old key is listed as previous, and the server starts.
	env["GRCONNECT_PREVIOUS_SECRET_KEYS"] = keyText(1)
	s := startServe(t, env)
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestServeRefusesAMissingKeyFileOverData: secret.key deleted on an install with
// data is not silently replaced by a new key.
func TestServeRefusesAMissingKeyFileOverData(t *testing.T) {
	env, dbPath := dbEnv(t)
	s := startServe(t, env) // creates secret.key and stores the key check
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, env, "client-secret-1\n", "app", "create", "--name", "Acme", "--client-id", "acme", "--client-secret-stdin"); r.err != nil {
		t.Fatal(r.err)
	}
	keyFile := filepath.Join(filepath.Dir(dbPath), "secret.key")
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, env, "", "serve", "--addr", "127.0.0.1:0")
	mustOneLine(t, r.err, "GRCONNECT_SECRET_KEY", keyFile, "missing")
	if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a new secret.key was made over existing data")
	}
	// A fresh install still gets its key made.
	fresh, _ := dbEnv(t)
	startServe(t, fresh).stop(t)
}

// TestRekeyRotatesTheConfiguredKey: after grconnect rekey (new key, old key listed
// as previous) everything opens with the new key alone; running it again, or after
// an interruption, changes nothing more.
func TestRekeyRotatesTheConfiguredKey(t *testing.T) {
	env, dbPath := dbEnv(t)
	env["GRCONNECT_SECRET_KEY"] = keyText(1)
	r := runCmd(t, env, "client-secret-1\n", "app", "create", "--name", "Acme", "--client-id", "acme", "--client-secret-stdin")
	if r.err != nil {
		t.Fatal(r.err)
	}
	appID := strings.TrimSpace(r.stdout)
	store := openStore(t, dbPath)
	old, _ := secrets.New(bytes.Repeat([]byte{1}, secrets.KeySize))
	for i := range 3 {
		id := models.NewID("con")
		c := &models.Connection{ID: id, AppID: appID, AccountID: "acc" + string(rune('0'+i)), Status: models.StatusActive, ConnectedAt: models.Now()}
		c.AccessTokenEnc, _ = old.Seal("access-"+id, secrets.AAD("connection", id, "access_token"))
		c.RefreshTokenEnc, _ = old.Seal("refresh-"+id, secrets.AAD("connection", id, "refresh_token"))
		if err := store.DB().Create(c).Error; err != nil {
			t.Fatal(err)
		}
	}

	env["GRCONNECT_SECRET_KEY"], env["GRCONNECT_PREVIOUS_SECRET_KEYS"] = keyText(2), keyText(1)
	r = runCmd(t, env, "", "rekey", "--batch", "2")
	if r.err != nil {
		t.Fatalf("rekey: %v\n%s", r.err, r.stderr)
	}
	for _, want := range []string{"connections", "access_token", "refresh_token", "client_secret", "install_secrets", "previous keys can now be dropped"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("rekey output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !regexp.MustCompile(`connections\s+access_token\s+3\s+0\s+0`).MatchString(r.stdout) {
		t.Errorf("rekey did not report 3 re-sealed access tokens:\n%s", r.stdout)
	}
	// The new key alone now opens everything.
	delete(env, "GRCONNECT_PREVIOUS_SECRET_KEYS")
	s := startServe(t, env)
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	cur, _ := secrets.New(bytes.Repeat([]byte{2}, secrets.KeySize))
	var conns []models.Connection
	store.DB().Find(&conns)
	for _, c := range conns {
		if v, err := cur.Open(c.RefreshTokenEnc, secrets.AAD("connection", c.ID, "refresh_token")); err != nil || v != "refresh-"+c.ID {
			t.Fatalf("%s: refresh token %q, %v", c.ID, v, err)
		}
	}
	again := runCmd(t, env, "", "rekey")
	if again.err != nil || !regexp.MustCompile(`connections\s+access_token\s+0\s+3\s+0`).MatchString(again.stdout) {
		t.Fatalf("a second rekey: %v\n%s", again.err, again.stdout)
	}
	// A key the data was never sealed with refuses, naming the setting.
	env["GRCONNECT_SECRET_KEY"] = keyText(3)
	mustOneLine(t, runCmd(t, env, "", "rekey").err, "GRCONNECT_SECRET_KEY")
}

// TestRekeyNewKeyFile: with the key in secret.key, rekey --new-key moves it to
// secret.previous.key and writes a new one; servers started from the two files
// at any moment open everything; after rekey the previous file can go.
func TestRekeyNewKeyFile(t *testing.T) {
	env, dbPath := dbEnv(t)
	startServe(t, env).stop(t)
	if r := runCmd(t, env, "client-secret-1\n", "app", "create", "--name", "Acme", "--client-id", "acme", "--client-secret-stdin"); r.err != nil {
		t.Fatal(r.err)
	}
	dir := filepath.Dir(dbPath)
	before, _ := os.ReadFile(filepath.Join(dir, "secret.key"))
	r := runCmd(t, env, "", "rekey", "--new-key")
	if r.err != nil || !strings.Contains(r.stdout, "secret.previous.key") {
		t.Fatalf("rekey --new-key: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "secret.key"))
	prev, _ := os.ReadFile(filepath.Join(dir, "secret.previous.key"))
	if bytes.Equal(before, after) || !strings.Contains(string(prev), strings.TrimSpace(string(before))) {
		t.Fatal("the key file was not rotated into secret.previous.key")
	}
	// Before the re-seal: a server reads both files and starts.
	startServe(t, env).stop(t)
	if r := runCmd(t, env, "", "rekey"); r.err != nil || !strings.Contains(r.stdout, "can now be dropped") {
		t.Fatalf("rekey: %v\n%s", r.err, r.stdout)
	}
	if err := os.Remove(filepath.Join(dir, "secret.previous.key")); err != nil {
		t.Fatal(err)
	}
	startServe(t, env).stop(t)
	// With GRCONNECT_SECRET_KEY set there is no key file to rotate.
	env["GRCONNECT_SECRET_KEY"] = strings.TrimSpace(string(after))
	mustOneLine(t, runCmd(t, env, "", "rekey", "--new-key").err, "GRCONNECT_SECRET_KEY")
}

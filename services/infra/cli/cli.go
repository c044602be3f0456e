// Package cli is grconnect's command line: a table of commands (serve, operator
// create, app create, backup, …) sharing one flag, help and logger path. main.go
// only hands it the process's arguments, environment and streams.
package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/infra/config"
	demopkg "github.com/grconnect/grconnect/services/infra/demo"
	"github.com/grconnect/grconnect/services/infra/secrets"
	"github.com/grconnect/grconnect/services/infra/server"
	"github.com/grconnect/grconnect/services/tokens"
)

// commands is the command line: each verb, its usage line and what runs it.
var commands = []command{
	{"serve", "grconnect [serve] [--demo] [flags]      run the server (see grconnect serve -h)", serve},
	{"operator create", "grconnect operator create --email E --password-stdin [--role admin|viewer]", createOperator},
	{"operator reset-password", "grconnect operator reset-password --email E   prints a one-time password reset link (24 h)", resetOperatorPassword},
	{"app create", "grconnect app create --name N --client-id ID --client-secret-stdin [--edition E] [--auth-url U] [--api-url U] [--x-domain D] [--return-origin ORIGIN]...", createApp},
	{"apikey create", "grconnect apikey create --name N [--scope S]... [--app APP_ID] [--expires DURATION]   prints a new API key, once", createAPIKey},
	{"migrate", "grconnect migrate                       apply pending database migrations, then exit", migrate},
	{"rekey", "grconnect rekey [--new-key]             re-seal every stored secret with GRCONNECT_SECRET_KEY (README: Rotating the key)", rekey},
	{"copy-db", "grconnect copy-db --to postgres://…     copy this (SQLite) install into an empty PostgreSQL database", copyDB},
	{"backup", "grconnect backup --to FILE              a consistent copy of the running (SQLite) install, with its key's ID", backup},
	{"restore", "grconnect restore --from FILE           replace the (stopped) install's database with a backup", restore},
	{"verify", "grconnect verify [--from FILE]          check the database (or a backup): schema, integrity, every secret opens with the key", verify},
	{"version", "grconnect version                       version, commit, build date and Go version (also --version)", printVersion},
	{"healthcheck", "grconnect healthcheck [--url URL]       exit 0 when the grconnect on GRCONNECT_ADDR is ready (/readyz), for containers", healthcheck},
}

// command is one verb of the command line.
type command struct {
	name  string // "serve", "operator create"
	usage string // its line in grconnect help
	run   func(ctx context.Context, inv *invocation) error
}

// invocation is one run of a command: its arguments (after the verb), streams and
// environment.
type invocation struct {
	name   string
	args   []string
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// loader holds the command's settings once flags() bound them; the logger
	// reads the log format and level from it.
	loader *config.Loader
	// jsonLogs is set once the logger writes JSON lines.
	jsonLogs bool
}

// ErrHelp is returned after a command printed its -h help: not a failure.
var ErrHelp = errors.New("help shown")

// Run is the whole program: it parses the command line (args[0] is the program's
// name), then runs one command with the given environment and streams.
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	return run(ctx, args, getenv, stdin, stdout, stderr)
}

func usage() string {
	var b strings.Builder
	b.WriteString("Usage:\n")
	for _, c := range commands {
		b.WriteString("  " + c.usage + "\n")
	}
	return b.String()
}

// run is the whole program: it parses the command line, then runs one command.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	rest := args[1:]
	if len(rest) > 0 && (rest[0] == "help" || rest[0] == "-h" || rest[0] == "--help") {
		fmt.Fprint(stdout, usage())
		return nil
	}
	if len(rest) > 0 && (rest[0] == "--version" || rest[0] == "-version") {
		rest[0] = "version"
	}
	if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
		rest = append([]string{"serve"}, rest...)
	}
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(rest) >= len(words) && slices.Equal(rest[:len(words)], words) {
			if c.name != "serve" {
				// Changes made on the command line are the audit log's "cli".
				ctx = models.WithActor(ctx, models.Actor{Name: models.CLIActor})
			}
			return c.run(ctx, &invocation{name: "grconnect " + c.name, args: rest[len(words):], getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr})
		}
	}
	for _, c := range commands {
		if verb, _, _ := strings.Cut(c.name, " "); verb == rest[0] && verb != c.name {
			return fmt.Errorf("unknown command %q; try: grconnect %s", strings.Join(rest, " "), c.name)
		}
	}
	return fmt.Errorf("unknown command %q\n%s", rest[0], usage())
}

// flags returns the command's flag set with every configuration setting bound.
func (inv *invocation) flags() (*flag.FlagSet, *config.Loader) {
	fs := flag.NewFlagSet(inv.name, flag.ContinueOnError)
	fs.SetOutput(inv.stderr)
	inv.loader = config.Bind(fs, inv.getenv)
	return fs, inv.loader
}

// parse parses the command's arguments; -h prints the flags and ends the command
// without a failure (ErrHelp).
func (inv *invocation) parse(fs *flag.FlagSet) error {
	if err := fs.Parse(inv.args); errors.Is(err, flag.ErrHelp) {
		return ErrHelp
	} else if err != nil {
		return err
	}
	return nil
}

// logger writes log lines to the command's standard error, as text or JSON
// (GRCONNECT_LOG_FORMAT), from level up unless GRCONNECT_LOG_LEVEL says otherwise.
// A bad value of either is left to the configuration's Load, which stops the
// command with one line naming it.
func (inv *invocation) logger(level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	jsonFormat := false
	if inv.loader != nil {
		if j, l, err := inv.loader.Logging(); err == nil {
			jsonFormat = j
			if l != nil {
				opts.Level = *l
			}
		}
	}
	inv.jsonLogs = jsonFormat
	if jsonFormat {
		return slog.New(slog.NewJSONHandler(inv.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(inv.stderr, opts))
}

// env is what every command opens: configuration, logger, database and key.
type env struct {
	cfg   *config.Config
	log   *slog.Logger
	store *models.Store
	box   *secrets.Box
}

// open validates the configuration, prepares the data directory, opens and
// migrates the database, and only then settles the key: a key file is created only
// for a database that holds nothing sealed, and a key (with any previous keys) that
// opens nothing stored stops the command.
func open(ctx context.Context, loader *config.Loader, log *slog.Logger) (*env, error) {
	cfg, err := loader.Load()
	if err != nil {
		return nil, err
	}
	if !cfg.IsPostgres() || !cfg.KeyConfigured() {
		if err := cfg.PrepareDataDir(); err != nil {
			return nil, err
		}
	}
	store, err := migrated(ctx, cfg.Database, log)
	if err != nil {
		return nil, err
	}
	// A database that answers reads but refuses writes (a read-only file or mount,
	// a full disk) would start "ready" and fail every refresh: refuse now, in one line.
	if err := store.ProbeWrite(ctx); err != nil {
		store.Close()
		problem := models.StorageProblemOf(err)
		if problem == "" {
			return nil, fmt.Errorf("invalid GRCONNECT_DATABASE (--database): the database refuses writes: %v", err)
		}
		return nil, fmt.Errorf("invalid GRCONNECT_DATABASE (--database): %s: %v", problem.Describe(), err)
	}
	box, err := openKey(ctx, cfg, store, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	return &env{cfg: cfg, log: log, store: store, box: box}, nil
}

// openKey loads the secret key (creating secret.key on a fresh install) and checks
// it against what the database holds.
func openKey(ctx context.Context, cfg *config.Config, store *models.Store, log *slog.Logger) (*secrets.Box, error) {
	missing, err := cfg.KeyFileMissing()
	if err != nil {
		return nil, err
	}
	if missing {
		held, err := services.HoldsSealedData(ctx, store)
		if err != nil {
			return nil, err
		}
		if held {
			return nil, fmt.Errorf("invalid GRCONNECT_SECRET_KEY (--secret-key): %s is missing but the database holds values sealed with a key; restore the key file from your backup or set GRCONNECT_SECRET_KEY (no new key is made over existing data)", cfg.KeyFile())
		}
	}
	created, keyPath, err := cfg.LoadSecretKey()
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("generated a new secret key; back it up: without it the stored tokens and client secrets cannot be read", "path", keyPath)
	}
	box, err := secrets.New(cfg.SecretKey, cfg.PreviousSecretKeys...)
	if err != nil {
		return nil, fmt.Errorf("invalid GRCONNECT_SECRET_KEY (--secret-key): %v", err)
	}
	if err := services.CheckKey(ctx, store, box); errors.Is(err, services.ErrWrongKey) {
		return nil, fmt.Errorf("invalid GRCONNECT_SECRET_KEY (--secret-key): this key (key ID %s) opens nothing stored in the database; start with the key the data was sealed with (during a rotation, list the old key in GRCONNECT_PREVIOUS_SECRET_KEYS)", box.KeyID())
	} else if err != nil {
		return nil, err
	}
	return box, nil
}

func serve(ctx context.Context, inv *invocation) error {
	fs, loader := inv.flags()
	demo := fs.Bool("demo", false, "also serve a simulated GetResponse and a demo app pointed at it")
	if err := inv.parse(fs); err != nil {
		return err
	}
	log := inv.logger(slog.LevelInfo)
	e, err := open(ctx, loader, log)
	if err != nil {
		return err
	}
	defer e.store.Close()
	if !e.cfg.IsPostgres() {
		release, err := models.LockServing(e.cfg.Database, func() error { return endOrphanLeases(ctx, e.store, log) })
		if err != nil {
			return fmt.Errorf("invalid GRCONNECT_DATABASE (--database): %v", err)
		}
		defer release()
	}
	e.cfg.Demo = *demo
	for _, w := range e.cfg.Warnings {
		log.Warn(w)
	}
	// Only the server makes scheduled backups, so only serve prepares their directory.
	if err := e.cfg.PrepareBackupDir(); err != nil {
		return err
	}

	srv, err := server.New(ctx, server.Options{Config: e.cfg, Store: e.store, Box: e.box, Log: log})
	if err != nil {
		return err
	}
	// Background work stops before the database closes.
	defer srv.Stop()
	if srv.Demo != nil {
		log.Info("demo mode: simulated GetResponse at "+e.cfg.BaseURL+demopkg.Prefix, "demo_app", srv.Demo.App.ID)
	}
	// A fresh install's /setup opens only with this URL, so the first operator is
	// whoever reads this log, not whoever finds the page first.
	setupURL := ""
	if fresh, err := srv.Operators.NeedsSetup(ctx); err != nil {
		return err
	} else if fresh {
		setupURL = e.cfg.BaseURL + "/setup?token=" + srv.Operators.SetupToken()
	}

	ln, err := net.Listen("tcp", e.cfg.Addr)
	if err != nil {
		return fmt.Errorf("invalid GRCONNECT_ADDR (--addr): %v", err)
	}
	// The background work (due refreshes, the metrics' figures, the webhook
	// outbox) starts once the port is bound, so a bad address stops serve before
	// any of it runs; it runs in goroutines, beside the first requests.
	srv.Start()
	hs := &http.Server{
		Handler:           srv.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("grconnect listening", "addr", ln.Addr().String(), "base_url", e.cfg.BaseURL, "demo", e.cfg.Demo)
	if setupURL != "" {
		// Last, where it is seen: the log line for machines, a framed block for people.
		log.Warn("open the setup URL to create the first operator", "url", setupURL)
		if !inv.jsonLogs {
			fmt.Fprint(inv.stderr, setupBox(setupURL))
		}
	}

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// setupBox frames a fresh install's setup URL for the terminal.
func setupBox(url string) string {
	lines := []string{"grconnect is ready. Create the first operator here:", "", "  " + url, "",
		"This link works until the first operator exists. Keep it to yourself."}
	width := 0
	for _, l := range lines {
		width = max(width, utf8.RuneCountInString(l))
	}
	var b strings.Builder
	b.WriteString("\n┌" + strings.Repeat("─", width+2) + "┐\n")
	for _, l := range lines {
		b.WriteString("│ " + l + strings.Repeat(" ", width-utf8.RuneCountInString(l)) + " │\n")
	}
	b.WriteString("└" + strings.Repeat("─", width+2) + "┘\n\n")
	return b.String()
}

// endOrphanLeases ends the refresh and webhook leases a killed server left in a
// SQLite database that no other server uses: its refreshes in flight are settled at
// once (the old token retried, or the connection marked lost in a crash) and the
// rest refresh now, instead of all waiting for the leases to expire.
func endOrphanLeases(ctx context.Context, store *models.Store, log *slog.Logger) error {
	refreshes, webhooks, err := store.ExpireOrphanLeases(ctx, models.Now())
	if err != nil {
		return err
	}
	if refreshes+webhooks > 0 {
		log.Warn("the previous server stopped without releasing its leases (killed?); ended them",
			"refresh_leases", refreshes, "webhook_leases", webhooks)
	}
	return nil
}

// readSecret reads one line (a password or client secret) from stdin.
func readSecret(stdin io.Reader, what string) (string, error) {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s from stdin: %w", what, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("no %s on stdin", what)
	}
	return line, nil
}

func createOperator(ctx context.Context, inv *invocation) error {
	fs, loader := inv.flags()
	email := fs.String("email", "", "the operator's email address")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	role := fs.String("role", string(models.RoleAdmin), "admin (changes everything) or viewer (sees every page, changes nothing but their own account)")
	if err := inv.parse(fs); err != nil {
		return err
	}
	if *email == "" || !*fromStdin || fs.NArg() > 0 {
		return errors.New("usage: grconnect operator create --email E --password-stdin [--role admin|viewer]")
	}
	if !models.Role(*role).Known() {
		return fmt.Errorf("--role: use admin or viewer, not %q", *role)
	}
	password, err := readSecret(inv.stdin, "password")
	if err != nil {
		return err
	}
	e, err := open(ctx, loader, inv.logger(slog.LevelWarn))
	if err != nil {
		return err
	}
	defer e.store.Close()
	// Asked first, so a taken address is one plain line (not the database's warning).
	if existing, err := e.store.OperatorByEmail(ctx, *email); err == nil {
		return fmt.Errorf("an operator with e-mail %s already exists (to let them in again: grconnect operator reset-password --email %s)", existing.Email, existing.Email)
	} else if !errors.Is(err, models.ErrNotFound) {
		return err
	}
	op, err := services.NewOperators(e.store, e.box).Create(ctx, *email, password, password, models.Role(*role))
	if fe, ok := models.AsFieldErrors(err); ok && len(fe) == 1 && fe["email"] != "" {
		return fmt.Errorf("--email: %s", strings.TrimSuffix(fe["email"], "."))
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(inv.stdout, op.ID)
	return nil
}

// resetOperatorPassword prints a one-time link with which an operator who forgot
// their password chooses a new one.
func resetOperatorPassword(ctx context.Context, inv *invocation) error {
	fs, loader := inv.flags()
	email := fs.String("email", "", "the operator's email address")
	if err := inv.parse(fs); err != nil {
		return err
	}
	if *email == "" || fs.NArg() > 0 {
		return errors.New("usage: grconnect operator reset-password --email E")
	}
	e, err := open(ctx, loader, inv.logger(slog.LevelWarn))
	if err != nil {
		return err
	}
	defer e.store.Close()
	link, err := services.NewOperators(e.store, e.box).CreatePasswordReset(ctx, *email, nil)
	if errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("no operator has the e-mail %s (grconnect operator create adds one)", models.NormalizeEmail(*email))
	}
	if err != nil {
		return err
	}
	// The only time the link is shown: grconnect keeps a hash of it.
	fmt.Fprintln(inv.stdout, e.cfg.BaseURL+"/reset-password/"+link.Token)
	fmt.Fprintf(inv.stderr, "The link works once, until %s; a newer link replaces it.\n", link.ExpiresAt.UTC().Format("2006-01-02 15:04 UTC"))
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func createApp(ctx context.Context, inv *invocation) error {
	fs, loader := inv.flags()
	name := fs.String("name", "", "app name, shown to customers")
	clientID := fs.String("client-id", "", "the GetResponse OAuth client ID")
	fromStdin := fs.Bool("client-secret-stdin", false, "read the client secret from standard input")
	edition := fs.String("edition", "", "standard, max_us or max_pl: GetResponse MAX (Enterprise) on .com or .pl (default: standard, or MAX when --x-domain is set)")
	authURL := fs.String("auth-url", "", "authorize URL (default: from the edition)")
	apiURL := fs.String("api-url", "", "API base URL (default: from the edition)")
	xDomain := fs.String("x-domain", "", "default GetResponse MAX (Enterprise) domain of the app's links (each connection sends its own as X-Domain)")
	var origins stringList
	fs.Var(&origins, "return-origin", "an origin a connect flow may return to (repeatable)")
	if err := inv.parse(fs); err != nil {
		return err
	}
	if *name == "" || *clientID == "" || !*fromStdin {
		return errors.New("usage: grconnect app create --name N --client-id ID --client-secret-stdin [--edition E] [--auth-url U] [--api-url U] [--x-domain D] [--return-origin ORIGIN]")
	}
	secret, err := readSecret(inv.stdin, "client secret")
	if err != nil {
		return err
	}
	if *edition == "" {
		switch {
		case *xDomain == "":
			*edition = "standard"
		case strings.Contains(*apiURL, ".pl"):
			*edition = "max_pl"
		default:
			*edition = "max_us"
		}
	}
	e, err := open(ctx, loader, inv.logger(slog.LevelWarn))
	if err != nil {
		return err
	}
	defer e.store.Close()
	srv, err := server.New(ctx, server.Options{Config: e.cfg, Store: e.store, Box: e.box, Log: e.log})
	if err != nil {
		return err
	}
	defer srv.Stop()
	app, err := srv.Apps.Create(ctx, services.AppInput{
		Name: *name, ClientID: *clientID, ClientSecret: secret, Edition: *edition, MaxDomain: *xDomain,
		AuthURL: *authURL, APIURL: *apiURL, ReturnOrigins: strings.Join(origins, "\n"),
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(inv.stdout, app.ID)
	// Say at once whether GetResponse accepts the credentials; an unreachable
	// GetResponse never blocks the registration.
	res, err := srv.Tokens.CheckApp(ctx, app, "command line")
	switch {
	case err != nil:
		fmt.Fprintf(inv.stderr, "grconnect: warning: the app is saved, but GetResponse could not be asked whether it accepts the client ID and secret (%v); the first refresh will tell\n", err)
	case res.Verdict == tokens.CheckRejected:
		fmt.Fprintln(inv.stderr, "grconnect: warning: the app is saved, but "+res.Advice())
	case res.Verdict == tokens.CheckGrantRefused:
		fmt.Fprintln(inv.stderr, "grconnect: note: the app is saved. "+res.Says)
	}
	return nil
}

func createAPIKey(ctx context.Context, inv *invocation) error {
	fs, loader := inv.flags()
	name := fs.String("name", "", "what uses the key, like \"billing backend\"")
	var scopes stringList
	fs.Var(&scopes, "scope", "a scope the key has (repeatable; none: every scope): "+scopeList())
	app := fs.String("app", "", "limit the key to this app's connections (an app ID, app_…)")
	expires := fs.String("expires", "", "the key stops working after this long, like 90d or 720h (default: never)")
	if err := inv.parse(fs); err != nil {
		return err
	}
	const usageLine = "usage: grconnect apikey create --name N [--scope S]... [--app APP_ID] [--expires DURATION]"
	if strings.TrimSpace(*name) == "" || fs.NArg() > 0 {
		return errors.New(usageLine)
	}
	var lifetime time.Duration
	if *expires != "" {
		d, err := parseLifetime(*expires)
		if err != nil {
			return fmt.Errorf("--expires: %w", err)
		}
		lifetime = d
	}
	e, err := open(ctx, loader, inv.logger(slog.LevelWarn))
	if err != nil {
		return err
	}
	defer e.store.Close()
	key, plain, err := services.NewAPIKeys(e.store, e.log).Create(ctx, services.APIKeyInput{
		Name: *name, Scopes: scopes, AppID: *app, ExpiresIn: lifetime, CreatedBy: "command line"})
	if fe, ok := models.AsFieldErrors(err); ok {
		flags := map[string]string{"name": "--name", "scopes": "--scope", "app_id": "--app", "expires": "--expires"}
		for _, field := range []string{"name", "scopes", "app_id", "expires"} {
			if msg, bad := fe[field]; bad {
				return fmt.Errorf("%s: %s", flags[field], strings.TrimSuffix(msg, "."))
			}
		}
	}
	if err != nil {
		return err
	}
	// The only time the key is shown: grconnect keeps a hash of it.
	fmt.Fprintln(inv.stdout, plain)
	var limited *models.App
	if key.AppID != "" {
		limited, _ = e.store.AppByID(ctx, key.AppID)
	}
	fmt.Fprintln(inv.stderr, "The key has "+services.DescribeKeyAccess(key, limited)+".")
	return nil
}

func scopeList() string {
	names := make([]string, len(models.APIScopes))
	for i, s := range models.APIScopes {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// parseLifetime reads a duration like "90d", "720h" or "1h30m".
func parseLifetime(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("use a duration like 90d or 720h, not %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("use a duration like 90d or 720h, not %q", s)
	}
	return d, nil
}

// openDatabase opens and migrates the configured database, without the secret key:
// the database commands never read a sealed value.
func openDatabase(ctx context.Context, loader *config.Loader, log *slog.Logger) (*models.Store, error) {
	cfg, err := loader.Load()
	if err != nil {
		return nil, err
	}
	if !cfg.IsPostgres() {
		if err := cfg.PrepareDataDir(); err != nil {
			return nil, err
		}
	}
	return migrated(ctx, cfg.Database, log)
}

// migrated opens a database and applies the pending migrations. A new SQLite
// database starts from the migrated image (models.CreateSQLite): a first start
// does not run every migration one by one.
func migrated(ctx context.Context, database string, log *slog.Logger) (*models.Store, error) {
	created := false
	if !isPostgres(database) {
		var err error
		if created, err = models.CreateSQLite(database); err != nil {
			return nil, fmt.Errorf("invalid GRCONNECT_DATABASE (--database): %v", err)
		}
	}
	store, err := models.Open(database, log)
	if err != nil {
		return nil, fmt.Errorf("invalid GRCONNECT_DATABASE (--database): %v", err)
	}
	applied, err := store.Migrate(ctx)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("database migration: %w", err)
	}
	if created {
		log.Info("database migrated", "applied", models.MigrationCount(), "schema_version", models.SchemaVersion(), "new", true)
	} else if applied > 0 {
		log.Info("database migrated", "applied", applied, "schema_version", models.SchemaVersion())
	}
	return store, nil
}

func isPostgres(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// migrate applies the pending migrations and exits: run it once before starting a
// new release on several replicas (each would also migrate at start, one at a time).
func migrate(ctx context.Context, inv *invocation) error {
	fs, loader := inv.flags()
	if err := inv.parse(fs); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("usage: grconnect migrate [--database D]")
	}
	store, err := openDatabase(ctx, loader, inv.logger(slog.LevelInfo))
	if err != nil {
		return err
	}
	defer store.Close()
	fmt.Fprintf(inv.stdout, "schema version %d\n", models.SchemaVersion())
	return nil
}

// copyDB copies the configured SQLite database into an empty PostgreSQL database.
func copyDB(ctx context.Context, inv *invocation) error {
	fs, loader := inv.flags()
	to := fs.String("to", "", "the empty PostgreSQL database to fill (postgres://…)")
	if err := inv.parse(fs); err != nil {
		return err
	}
	if !isPostgres(*to) || fs.NArg() > 0 {
		return errors.New("usage: grconnect copy-db --to postgres://USER@HOST/DB (from GRCONNECT_DATABASE, a SQLite file)")
	}
	log := inv.logger(slog.LevelWarn)
	src, err := openDatabase(ctx, loader, log)
	if err != nil {
		return err
	}
	defer src.Close()
	if src.IsPostgres() {
		return errors.New("copy-db copies a SQLite install: GRCONNECT_DATABASE (--database) names PostgreSQL")
	}
	dst, err := models.Open(*to, log)
	if err != nil {
		return fmt.Errorf("invalid --to: %v", err)
	}
	defer dst.Close()
	counts, err := src.CopyTo(ctx, dst)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(inv.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\trows\tcopied\t")
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", c.Table, c.Source, c.Target)
	}
	tw.Flush()
	fmt.Fprintln(inv.stdout, "copied; every table's row count matches. Start grconnect with GRCONNECT_DATABASE set to the new database and the same secret key.")
	return nil
}

// rekey re-seals every stored secret with the current key (reading with the
// previous ones) and prints the counts; with --new-key it first rotates the key
// file instead (see README: Rotating the key).
func rekey(ctx context.Context, inv *invocation) error {
	fs, loader := inv.flags()
	newKey := fs.Bool("new-key", false, "key in secret.key only: move it to secret.previous.key and write a new one (restart the servers, then run grconnect rekey)")
	batch := fs.Int("batch", 500, "rows re-sealed per transaction")
	if err := inv.parse(fs); err != nil {
		return err
	}
	if fs.NArg() > 0 || *batch < 1 || *batch > 10000 {
		return errors.New("usage: grconnect rekey [--new-key] [--batch N (1–10000)]")
	}
	e, err := open(ctx, loader, inv.logger(slog.LevelWarn))
	if err != nil {
		return err
	}
	defer e.store.Close()
	if *newKey {
		return rotateKeyFile(ctx, e, inv.stdout)
	}
	counts, err := services.Rekey(ctx, e.store, e.box, *batch)
	tw := tabwriter.NewWriter(inv.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tfield\tre-sealed\talready current\tunreadable\t")
	unreadable := 0
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t\n", c.Table, c.Field, c.Resealed, c.Current, c.Unreadable)
		unreadable += c.Unreadable
	}
	tw.Flush()
	if err != nil {
		return fmt.Errorf("rekey stopped (run it again to go on): %w", err)
	}
	if unreadable > 0 {
		return fmt.Errorf("%d stored values open with no configured key and were left as they are; keep every previous key until they are found", unreadable)
	}
	remaining, err := services.RemainingUnderPreviousKeys(ctx, e.store, e.box)
	if err != nil {
		return err
	}
	switch {
	case remaining > 0:
		fmt.Fprintf(inv.stdout, "%d values were written under a previous key meanwhile (a server not yet restarted with the new key?): restart every server with the new key, then run grconnect rekey again.\n", remaining)
	case e.box.HasPrevious():
		fmt.Fprintf(inv.stdout, "Every stored secret is sealed with the current key (key ID %s). The previous keys can now be dropped: remove GRCONNECT_PREVIOUS_SECRET_KEYS and delete %s if it exists.\n", e.box.KeyID(), e.cfg.PreviousKeyFile())
	default:
		fmt.Fprintf(inv.stdout, "Every stored secret is sealed with the current key (key ID %s).\n", e.box.KeyID())
	}
	return nil
}

// rotateKeyFile replaces secret.key with a new key, keeping the old one in
// secret.previous.key: every server started from these files opens everything.
func rotateKeyFile(ctx context.Context, e *env, stdout io.Writer) error {
	if e.cfg.KeyConfigured() {
		return errors.New("rekey --new-key rotates secret.key, but GRCONNECT_SECRET_KEY (--secret-key) is set: put a new key there and the old one in GRCONNECT_PREVIOUS_SECRET_KEYS, restart, then run grconnect rekey")
	}
	newKey, oldKey, err := secrets.RotateKeyFile(e.cfg.KeyFile(), e.cfg.PreviousKeyFile())
	if err != nil {
		return fmt.Errorf("invalid GRCONNECT_SECRET_KEY (--secret-key): rotate the key file: %v", err)
	}
	if err := e.store.RecordAction(ctx, models.AuditKeyRotated, services.TargetInstall, "",
		fmt.Sprintf("Key file rotated: new key ID %s, previous key ID %s kept in %s", secrets.KeyID(newKey), secrets.KeyID(oldKey), e.cfg.PreviousKeyFile())); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s now holds a new key (key ID %s); the old one (key ID %s) is in %s.\n", e.cfg.KeyFile(), secrets.KeyID(newKey), secrets.KeyID(oldKey), e.cfg.PreviousKeyFile())
	fmt.Fprintln(stdout, "Next: restart every grconnect server (they read both files), then run grconnect rekey. Back up both files.")
	return nil
}

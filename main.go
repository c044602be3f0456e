// Command grconnect is a self-hosted dashboard that connects customers' GetResponse
// accounts over OAuth2 and keeps their tokens alive. See README.md.
package main

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
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/grconnect/grconnect/handlers"
	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/config"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/secrets"
	"github.com/grconnect/grconnect/static"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil && !errors.Is(err, errHelp) {
		fmt.Fprintln(os.Stderr, "grconnect:", err)
		os.Exit(1)
	}
}

const usage = `Usage:
  grconnect [serve] [--demo] [flags]      run the server (see grconnect serve -h)
  grconnect operator create --email E --password-stdin
  grconnect app create --name N --client-id ID --client-secret-stdin [--edition E] [--auth-url U] [--api-url U] [--x-domain D] [--return-origin ORIGIN]...
  grconnect apikey create --name N        prints a new API key, once
  grconnect migrate                       apply pending database migrations, then exit
  grconnect copy-db --to postgres://…     copy this (SQLite) install into an empty PostgreSQL database
`

// errHelp is returned after a command printed its -h help: not a failure.
var errHelp = errors.New("help shown")

// run is the whole program: it parses the command line, then runs one command.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, rest := "serve", args[1:]
	if len(rest) > 0 && (!strings.HasPrefix(rest[0], "-") || rest[0] == "-h" || rest[0] == "--help") {
		cmd, rest = rest[0], rest[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stderr)
	case "operator", "app", "apikey":
		if len(rest) == 0 || rest[0] != "create" {
			return fmt.Errorf("unknown command %q; try: grconnect %s create", strings.Join(append([]string{cmd}, rest...), " "), cmd)
		}
		switch cmd {
		case "operator":
			return createOperator(ctx, rest[1:], getenv, stdin, stdout, stderr)
		case "apikey":
			return createAPIKey(ctx, rest[1:], getenv, stdout, stderr)
		}
		return createApp(ctx, rest[1:], getenv, stdin, stdout, stderr)
	case "migrate":
		return migrate(ctx, rest, getenv, stdout, stderr)
	case "copy-db":
		return copyDB(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// env is what every command opens: configuration, logger, database and key.
type env struct {
	cfg   *config.Config
	log   *slog.Logger
	store *models.Store
	box   *secrets.Box
}

// open validates the configuration, prepares the data directory and key, and opens
// and migrates the database.
func open(ctx context.Context, loader *config.Loader, log *slog.Logger) (*env, error) {
	cfg, err := loader.Load()
	if err != nil {
		return nil, err
	}
	if err := cfg.PrepareDataDir(); err != nil {
		return nil, err
	}
	created, keyPath, err := cfg.LoadSecretKey()
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("generated a new secret key; back it up: without it the stored tokens and client secrets cannot be read", "path", keyPath)
	}
	box, err := secrets.New(cfg.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("invalid GRCONNECT_SECRET_KEY (--secret-key): %v", err)
	}
	store, err := migrated(ctx, cfg.Database, log)
	if err != nil {
		return nil, err
	}
	return &env{cfg: cfg, log: log, store: store, box: box}, nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := newFlagSet("grconnect serve", stderr)
	loader := config.Bind(fs, getenv)
	demo := fs.Bool("demo", false, "also serve a simulated GetResponse and a demo app pointed at it")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return errHelp
	} else if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e, err := open(ctx, loader, log)
	if err != nil {
		return err
	}
	defer e.store.Close()
	e.cfg.Demo = *demo

	ops := services.NewOperators(e.store)
	apps := services.NewApps(e.store, e.box, services.AppDefaults{AuthURL: e.cfg.GetResponseAuthURL, APIURL: e.cfg.GetResponseAPIURL})
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// The proxy runs up to 10 calls at once per GetResponse account: keep their connections.
	transport.MaxIdleConnsPerHost = 32
	hc := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	deps := handlers.Deps{Config: e.cfg, Store: e.store, Box: e.box, Operators: ops, Apps: apps, Assets: static.New(), Log: log}
	if e.cfg.Demo {
		demo, err := services.SetUpDemo(ctx, e.store, apps, e.box, e.cfg.BaseURL)
		if err != nil {
			return fmt.Errorf("demo mode: %w", err)
		}
		defer demo.Fake.Close()
		hc.Transport = demo.Transport(transport)
		deps.DemoGetResponse = demo.Fake
		log.Info("demo mode: simulated GetResponse at "+e.cfg.BaseURL+services.DemoPrefix, "demo_app", demo.App.ID)
	}
	gr := getresponse.New(hc)
	deps.Connect = services.NewConnect(e.store, e.box, apps, gr, e.cfg.BaseURL, log)
	deps.Tokens = services.NewTokens(e.store, e.box, apps, gr, e.cfg.RefreshMargin, e.cfg.RedirectURL(), log)
	deps.Webhooks = services.NewWebhooks(e.store, e.box, nil, log)
	deps.APIKeys, deps.APITokens = services.NewAPIKeys(e.store), services.NewAPITokens(deps.Tokens, e.store, e.box)
	deps.Proxy = services.NewProxy(deps.APITokens, e.store, gr)
	// Background work stops before the database closes: cancel, then wait.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	deps.Bulk = services.NewBulk(workCtx, deps.Tokens, e.store, e.cfg.RefreshRate, log)
	router := handlers.New(deps)
	var work sync.WaitGroup
	defer work.Wait()
	defer stopWork()
	refresher := services.NewRefresher(deps.Tokens, e.store, services.RefresherConfig{
		Margin: e.cfg.RefreshMargin, Keepalive: e.cfg.Keepalive, RatePerSecond: e.cfg.RefreshRate, Concurrency: e.cfg.RefreshConcurrency,
		Interval: e.cfg.RefreshInterval,
	}, log)
	work.Go(func() { refresher.Run(workCtx) })
	work.Go(func() { deps.Webhooks.Run(workCtx) })
	defer deps.Bulk.Wait()

	ln, err := net.Listen("tcp", e.cfg.Addr)
	if err != nil {
		return fmt.Errorf("invalid GRCONNECT_ADDR (--addr): %v", err)
	}
	srv := &http.Server{
		Handler:           router,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("grconnect listening", "addr", ln.Addr().String(), "base_url", e.cfg.BaseURL, "demo", e.cfg.Demo)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
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

func createOperator(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("grconnect operator create", stderr)
	loader := config.Bind(fs, getenv)
	email := fs.String("email", "", "the operator's email address")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return errHelp
	} else if err != nil {
		return err
	}
	if *email == "" || !*fromStdin {
		return errors.New("usage: grconnect operator create --email E --password-stdin")
	}
	password, err := readSecret(stdin, "password")
	if err != nil {
		return err
	}
	e, err := open(ctx, loader, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer e.store.Close()
	op, err := services.NewOperators(e.store).Create(ctx, *email, password, password)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, op.ID)
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func createApp(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("grconnect app create", stderr)
	loader := config.Bind(fs, getenv)
	name := fs.String("name", "", "app name, shown to customers")
	clientID := fs.String("client-id", "", "the GetResponse OAuth client ID")
	fromStdin := fs.Bool("client-secret-stdin", false, "read the client secret from standard input")
	edition := fs.String("edition", "", "standard, max_us or max_pl (default: standard, or MAX when --x-domain is set)")
	authURL := fs.String("auth-url", "", "authorize URL (default: from the edition)")
	apiURL := fs.String("api-url", "", "API base URL (default: from the edition)")
	xDomain := fs.String("x-domain", "", "GetResponse MAX domain, sent as X-Domain")
	var origins stringList
	fs.Var(&origins, "return-origin", "an origin a connect flow may return to (repeatable)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return errHelp
	} else if err != nil {
		return err
	}
	if *name == "" || *clientID == "" || !*fromStdin {
		return errors.New("usage: grconnect app create --name N --client-id ID --client-secret-stdin [--edition E] [--auth-url U] [--api-url U] [--x-domain D] [--return-origin ORIGIN]")
	}
	secret, err := readSecret(stdin, "client secret")
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
	e, err := open(ctx, loader, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer e.store.Close()
	apps := services.NewApps(e.store, e.box, services.AppDefaults{AuthURL: e.cfg.GetResponseAuthURL, APIURL: e.cfg.GetResponseAPIURL})
	app, err := apps.Create(ctx, services.AppInput{
		Name: *name, ClientID: *clientID, ClientSecret: secret, Edition: *edition, MaxDomain: *xDomain,
		AuthURL: *authURL, APIURL: *apiURL, ReturnOrigins: strings.Join(origins, "\n"),
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, app.ID)
	return nil
}

func createAPIKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("grconnect apikey create", stderr)
	loader := config.Bind(fs, getenv)
	name := fs.String("name", "", "what uses the key, like \"billing backend\"")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return errHelp
	} else if err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" || fs.NArg() > 0 {
		return errors.New("usage: grconnect apikey create --name N")
	}
	e, err := open(ctx, loader, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	defer e.store.Close()
	_, key, err := services.NewAPIKeys(e.store).Create(ctx, *name, "command line")
	if err != nil {
		return err
	}
	// The only time the key is shown: grconnect keeps a hash of it.
	fmt.Fprintln(stdout, key)
	return nil
}

// openDatabase opens and migrates the configured database, without the secret key:
// the database commands never read a sealed value.
func openDatabase(ctx context.Context, loader *config.Loader, log *slog.Logger) (*models.Store, error) {
	cfg, err := loader.Load()
	if err != nil {
		return nil, err
	}
	if !isPostgres(cfg.Database) {
		if err := cfg.PrepareDataDir(); err != nil {
			return nil, err
		}
	}
	return migrated(ctx, cfg.Database, log)
}

// migrated opens a database and applies the pending migrations.
func migrated(ctx context.Context, database string, log *slog.Logger) (*models.Store, error) {
	store, err := models.Open(database, log)
	if err != nil {
		return nil, fmt.Errorf("invalid GRCONNECT_DATABASE (--database): %v", err)
	}
	applied, err := store.Migrate(ctx)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("database migration: %w", err)
	}
	if applied > 0 {
		log.Info("database migrated", "applied", applied, "schema_version", models.SchemaVersion())
	}
	return store, nil
}

func isPostgres(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// migrate applies the pending migrations and exits: run it once before starting a
// new release on several replicas (each would also migrate at start, one at a time).
func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("grconnect migrate", stderr)
	loader := config.Bind(fs, getenv)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return errHelp
	} else if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("usage: grconnect migrate [--database D]")
	}
	store, err := openDatabase(ctx, loader, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		return err
	}
	defer store.Close()
	fmt.Fprintf(stdout, "schema version %d\n", models.SchemaVersion())
	return nil
}

// copyDB copies the configured SQLite database into an empty PostgreSQL database.
func copyDB(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("grconnect copy-db", stderr)
	loader := config.Bind(fs, getenv)
	to := fs.String("to", "", "the empty PostgreSQL database to fill (postgres://…)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return errHelp
	} else if err != nil {
		return err
	}
	if !isPostgres(*to) || fs.NArg() > 0 {
		return errors.New("usage: grconnect copy-db --to postgres://USER@HOST/DB (from GRCONNECT_DATABASE, a SQLite file)")
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
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
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\trows\tcopied\t")
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", c.Table, c.Source, c.Target)
	}
	tw.Flush()
	fmt.Fprintln(stdout, "copied; every table's row count matches. Start grconnect with GRCONNECT_DATABASE set to the new database and the same secret key.")
	return nil
}

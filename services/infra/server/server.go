// Package server assembles grconnect: the services over one store and key, the
// router over them, and the background workers. main.go and the handlers' test
// harness both build the whole program through New, so what the tests run is what
// ships.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/grconnect/grconnect/handlers"
	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/infra/config"
	"github.com/grconnect/grconnect/services/infra/demo"
	"github.com/grconnect/grconnect/services/infra/mailer"
	"github.com/grconnect/grconnect/services/infra/metrics"
	"github.com/grconnect/grconnect/services/infra/netguard"
	"github.com/grconnect/grconnect/services/infra/secrets"
	"github.com/grconnect/grconnect/services/tokens"
	"github.com/grconnect/grconnect/static"
)

// Options is what New builds from.
type Options struct {
	Config *config.Config
	Store  *models.Store
	Box    *secrets.Box
	Log    *slog.Logger
	// PasswordCost is the bcrypt cost of new passwords; 0 means the default.
	PasswordCost int
	// TokenTimeout bounds one call to GetResponse's token endpoint; 0 means the
	// client's default.
	TokenTimeout time.Duration
	// NoDemoSeed keeps demo mode's first start from seeding demo connections
	// (tests that count connections).
	NoDemoSeed bool
}

// DrainTimeout bounds how long Stop waits for received token pairs that the
// database refused so far.
const DrainTimeout = 60 * time.Second

// Server is one assembled grconnect.
type Server struct {
	// Handler serves every route.
	Handler *echo.Echo

	Operators *services.Operators
	Sessions  *services.Sessions
	Apps      *services.Apps
	Connect   *services.Connect
	Tokens    *tokens.Tokens
	// Connections reads connections and disconnects them.
	Connections *services.Connections
	APIKeys     *services.APIKeys
	Proxy       *tokens.Proxy
	Webhooks    *services.Webhooks
	// Events receives GetResponse's events at each connection's events URL and
	// relays them; Callbacks registers those URLs as the accounts' callbacks.
	Events    *services.Events
	Callbacks *services.Callbacks
	Bulk      *tokens.Bulk
	Refresher *tokens.Refresher
	// Housekeeping sweeps expired authorizations, throttle rows and sessions.
	Housekeeping *services.Housekeeping
	Metrics      *metrics.Registry
	Alerts       *services.Alerts
	// Audit reads the audit log; Backups makes the scheduled backups.
	Audit   *services.Audit
	Backups *services.Backups
	// Invitations adds operators through single-use links (e-mailed when a mail
	// server is set).
	Invitations *services.Invitations
	// Demo is demo mode, when Config.Demo is set.
	Demo *demo.Mode

	log      *slog.Logger
	workCtx  context.Context
	stopWork context.CancelFunc
	work     sync.WaitGroup
	// The heartbeat outlives the other work: it beats until received pairs are
	// drained, so no replica takes this one for gone while it still holds some.
	stopBeat context.CancelFunc
	beat     sync.WaitGroup
}

// OutgoingGuard is the guard of every call to GetResponse (token endpoint, API,
// proxy, checks): private addresses only for the hosts of the server's own
// GetResponse URL settings (and, in demo mode, of the base URL, where the simulated
// GetResponse lives) or with GRCONNECT_GETRESPONSE_ALLOW_PRIVATE. Apps' URLs are
// checked against it when saved.
func OutgoingGuard(cfg *config.Config) *netguard.Guard {
	hosts := []string{netguard.HostOf(cfg.GetResponseAuthURL), netguard.HostOf(cfg.GetResponseAPIURL)}
	if cfg.Demo {
		hosts = append(hosts, netguard.HostOf(cfg.BaseURL))
	}
	allow := cfg.GetResponseAllowPrivate
	return netguard.New("GRCONNECT_GETRESPONSE_ALLOW_PRIVATE", func() bool { return allow }, hosts...)
}

// New builds the services and the router. Background work starts with Start.
func New(ctx context.Context, o Options) (*Server, error) {
	cfg, store, box, log := o.Config, o.Store, o.Box, o.Log
	guard := OutgoingGuard(cfg)
	t := guard.Transport()
	// The proxy runs up to 10 calls at once per GetResponse account: keep their connections.
	t.MaxIdleConnsPerHost = 32
	var transport http.RoundTripper = t
	s := &Server{log: log}
	s.Operators = services.NewOperators(store, box)
	s.Sessions = services.NewSessions(store)
	if o.PasswordCost > 0 {
		s.Operators.Cost = o.PasswordCost
	}
	s.Apps = services.NewApps(store, box, services.AppDefaults{AuthURL: cfg.GetResponseAuthURL, APIURL: cfg.GetResponseAPIURL})
	s.Apps.Guard = guard
	if cfg.Demo {
		mode, err := demo.Setup(ctx, store, s.Apps, box, cfg.BaseURL, log)
		if err != nil {
			return nil, fmt.Errorf("demo mode: %w", err)
		}
		s.Demo = mode
		transport = mode.Transport(transport)
	}
	hc := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	s.Metrics = metrics.New(store, log)
	s.Metrics.Margin = cfg.RefreshMargin
	// Due for longer than two of the refresher's passes (at least a minute): behind.
	s.Metrics.DueGrace = max(2*cfg.RefreshInterval, time.Minute)
	gr := getresponse.New(hc)
	gr.Observe = s.Metrics.ObserveCall
	if o.TokenTimeout > 0 {
		gr.TokenTimeout = o.TokenTimeout
	}
	// Background work (bulk jobs, the refresher, webhooks) stops with Stop, before
	// the caller closes the database.
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	s.workCtx, s.stopWork = workCtx, stopWork
	s.Connect = services.NewConnect(store, box, s.Apps, gr, cfg.BaseURL, log)
	policy := tokens.DuePolicy{Margin: cfg.RefreshMargin, Keepalive: cfg.Keepalive}
	s.Tokens = tokens.NewTokens(store, box, gr, policy, cfg.RedirectURL(), log)
	s.Connections = services.NewConnections(store, s.Tokens)
	s.Tokens.SetRefreshRate(cfg.RefreshRate)
	if cfg.RefreshLease > 0 {
		s.Tokens.SetLease(cfg.RefreshLease)
	}
	s.Connect.AppWorks, s.Connect.AppFails = s.Tokens.AppWorks, s.Tokens.AppFails
	s.APIKeys = services.NewAPIKeys(store, log)
	s.Proxy = tokens.NewProxy(s.Tokens, store, gr, cfg.ProxyMaxWait)
	s.Webhooks = services.NewWebhooks(store, box, nil, log)
	s.Webhooks.AllowPrivate = cfg.WebhookAllowPrivate
	// Webhook leases carry this process's name too, so a replica that sees it gone
	// ends them with its refresh leases.
	s.Webhooks.LeaseAs(s.Tokens.Process())
	s.Events = services.NewEvents(store, box, cfg.BaseURL, cfg.EventsRate, s.Webhooks, log)
	// Callback registrations are GetResponse calls like the others: the same
	// guarded transport, with a timeout of their own.
	cbGR := getresponse.New(&http.Client{Transport: transport, Timeout: services.CallbacksTimeout})
	cbGR.Observe = s.Metrics.ObserveCall
	s.Callbacks = services.NewCallbacks(store, box, s.Tokens, s.Apps, s.Events, cbGR, log)
	s.Bulk = tokens.NewBulk(workCtx, s.Tokens, store, cfg.RefreshRate, log)
	s.Refresher = tokens.NewRefresher(s.Tokens, store, tokens.RefresherConfig{
		Concurrency: cfg.RefreshConcurrency, Interval: cfg.RefreshInterval,
	}, log)
	var sender services.Sender
	if cfg.SMTPURL != nil {
		sender = mailer.New(cfg.SMTPURL)
	}
	s.Alerts = services.NewAlerts(store, sender, cfg.MailFrom, cfg.BaseURL, log)
	s.Invitations = services.NewInvitations(store, s.Operators, sender, cfg.MailFrom, cfg.BaseURL, log)
	s.Housekeeping = services.NewHousekeeping(store, log)
	s.Housekeeping.AuditRetention = cfg.AuditRetention
	s.Housekeeping.TimelineRetention = cfg.TimelineRetention
	s.Tokens.Observer = s.Metrics
	s.Audit = services.NewAudit(store, log)
	s.Backups = services.NewBackups(store, box, cfg.BackupDir, cfg.BackupEvery, cfg.BackupKeep, log)
	s.Backups.Observer = s.Metrics
	deps := handlers.Deps{
		Config: cfg, Store: store, Box: box, Assets: static.New(), Log: log, Metrics: s.Metrics,
		Operators: s.Operators, Sessions: s.Sessions, Apps: s.Apps, Connect: s.Connect, Connections: s.Connections, Tokens: s.Tokens, Webhooks: s.Webhooks,
		Events: s.Events, Callbacks: s.Callbacks,
		Bulk: s.Bulk, APIKeys: s.APIKeys, Proxy: s.Proxy, Alerts: s.Alerts, Audit: s.Audit, Backups: s.Backups,
		Invitations: s.Invitations,
	}
	if s.Demo != nil {
		deps.DemoGetResponse = s.Demo.Fake
		if !o.NoDemoSeed {
			n, err := s.Demo.Seed(ctx, store, s.Apps, s.Connect)
			if err != nil {
				log.Warn("demo mode: seeding demo connections failed", "seeded", n, "error", err)
			} else if n > 0 {
				log.Info("demo mode: seeded demo connections", "count", n)
			}
		}
	}
	s.Handler = handlers.New(deps)
	if s.Demo != nil {
		s.Demo.DeliverTo(s.Handler)
	}
	return s, nil
}

// Start runs the background workers (the refresher, the webhook sender, the
// relay of GetResponse's events, the callback registrations, the proxy's sharing
// of rate limits with other replicas, the metrics reader, the hourly
// housekeeping, the scheduled backups and, on PostgreSQL, the heartbeat) until
// Stop.
func (s *Server) Start() {
	beatCtx, stopBeat := context.WithCancel(context.WithoutCancel(s.workCtx))
	s.stopBeat = stopBeat
	s.beat.Go(func() { s.Tokens.RunHeartbeat(beatCtx) })
	s.Refresher.Announce()
	s.work.Go(func() { s.Refresher.Run(s.workCtx) })
	s.work.Go(func() { s.Tokens.RunPending(s.workCtx) })
	s.work.Go(func() { s.Tokens.RunNudges(s.workCtx) })
	s.work.Go(func() { s.APIKeys.Run(s.workCtx) })
	s.work.Go(func() { s.Alerts.Run(s.workCtx) })
	s.work.Go(func() { s.Webhooks.Run(s.workCtx) })
	s.work.Go(func() { s.Events.RunRelay(s.workCtx) })
	s.work.Go(func() { s.Callbacks.Run(s.workCtx) })
	s.work.Go(func() { s.Proxy.Run(s.workCtx) })
	s.work.Go(func() { s.Metrics.Run(s.workCtx) })
	s.work.Go(func() { s.Housekeeping.Run(s.workCtx) })
	s.work.Go(func() { s.Backups.Run(s.workCtx) })
	if s.Demo != nil {
		s.work.Go(func() { s.Demo.Run(s.workCtx) })
	}
}

// Stop ends the background work and waits for it: refreshes already sent are
// committed, bulk jobs end, and token pairs the database refused so far get up to
// DrainTimeout more to be stored (the heartbeat goes on meanwhile), and the
// process's heartbeat row goes. Call it before closing the database.
func (s *Server) Stop() {
	s.stopWork()
	s.work.Wait()
	s.Bulk.Wait()
	if n := s.Tokens.PendingPairs(); n > 0 {
		s.log.Warn("waiting for received token pairs to be stored before stopping", "pending", n, "up_to", DrainTimeout)
		ctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
		lost := s.Tokens.Drain(ctx)
		cancel()
		if len(lost) > 0 {
			// Under strict rotation these customers must reconnect: say so loudly.
			s.log.Error("stopping with token pairs the database never accepted; these connections may need a reconnect", "connections", lost)
		}
	}
	if s.stopBeat != nil {
		s.stopBeat()
		s.beat.Wait()
	}
	retireCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	s.Tokens.Retire(retireCtx)
	cancel()
	if s.Demo != nil {
		s.Demo.Close()
	}
}

package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// Inbound events: limits and timing.
const (
	// EventsMaxBody is the largest event body an events URL takes (413 beyond).
	EventsMaxBody = 256 << 10
	// eventsDedupWindow is how long an event without an ID (a callback) counts as
	// a duplicate of one with the same content.
	eventsDedupWindow = time.Minute
	// DefaultEventsRate and eventsBurstSeconds bound each connection's events:
	// so many per second, with bursts of eventsBurstSeconds' worth.
	DefaultEventsRate  = 100
	eventsBurstSeconds = 10
	relayBatch         = 200
	relayLease         = 60 * time.Second
	// relayGather is the least time between two partial passes of the relay, so
	// that events arriving one by one are relayed a few hundred at a time.
	relayGather = 100 * time.Millisecond
	// InboundRetention is how long relayed inbound events are kept (deduplication
	// of GetResponse's retries needs minutes; their timeline entries and
	// deliveries stay).
	InboundRetention = 7 * 24 * time.Hour
)

// eventsPath is where events URLs live: BASE_URL/events/<token>.
const eventsPath = "/events/"

// ErrEventsRateLimited is returned when a connection's events URL gets more
// events than its limit; GetResponse retries webhooks answered 429.
type ErrEventsRateLimited struct{ RetryAfter time.Duration }

func (e *ErrEventsRateLimited) Error() string {
	return "too many events for this connection; retry after " + e.RetryAfter.String()
}

// Events receives the events GetResponse sends to each connection's events URL
// (its webhooks, set up in GetResponse's panel, and its callbacks), keeps each
// once, and relays them: onto the connection's timeline and, as getresponse.event,
// to the app's webhook.
type Events struct {
	store    *models.Store
	box      *secrets.Box
	baseURL  string
	log      *slog.Logger
	webhooks *Webhooks
	limiter  *eventLimiter
	commits  *groupCommit
	owner    string
	pass     atomic.Uint64
	kick     chan struct{}
	// Interval is how often RunRelay looks for events other processes stored.
	Interval time.Duration
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// NewEvents returns the events service for grconnect at baseURL; ratePerSecond
// bounds each connection's events (GRCONNECT_EVENTS_RATE; 0: DefaultEventsRate).
// webhooks, when set, is woken when relayed events queue deliveries.
func NewEvents(store *models.Store, box *secrets.Box, baseURL string, ratePerSecond float64, webhooks *Webhooks, log *slog.Logger) *Events {
	if ratePerSecond <= 0 {
		ratePerSecond = DefaultEventsRate
	}
	return &Events{store: store, box: box, baseURL: baseURL, log: log, webhooks: webhooks,
		limiter: newEventLimiter(ratePerSecond, ratePerSecond*eventsBurstSeconds), commits: &groupCommit{store: store},
		owner: "relay/" + models.RandomToken(6), kick: make(chan struct{}, 1), Interval: time.Second, Now: models.Now}
}

// eventsTokenAAD binds a sealed events token to its connection.
func eventsTokenAAD(connID string) string { return secrets.AAD("connection", connID, "events_token") }

// URLOf returns the events URL of token.
func (e *Events) URLOf(token string) string { return e.baseURL + eventsPath + token }

// IsEventsURL reports whether u is an events URL of this grconnect (of any
// connection, current or rotated away).
func (e *Events) IsEventsURL(u string) bool {
	prefix := e.baseURL + eventsPath
	return len(u) > len(prefix) && u[:len(prefix)] == prefix
}

// URL returns connection conn's events URL, making it when the connection has
// none yet; a disconnected connection has none ("").
func (e *Events) URL(ctx context.Context, conn *models.Connection) (string, error) {
	if conn.Status == models.StatusDisconnected {
		return "", nil
	}
	if conn.EventsTokenEnc != "" {
		token, err := e.box.Open(conn.EventsTokenEnc, eventsTokenAAD(conn.ID))
		if err != nil {
			return "", err
		}
		return e.URLOf(token), nil
	}
	token, hash, enc, err := e.newToken(conn.ID)
	if err != nil {
		return "", err
	}
	changed, err := e.store.SetEventsToken(ctx, conn.ID, hash, enc, false, nil)
	if errors.Is(err, models.ErrDisconnected) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if !changed { // another request made it first
		if enc, err = e.store.EventsTokenOf(ctx, conn.ID); err != nil {
			return "", err
		}
		if token, err = e.box.Open(enc, eventsTokenAAD(conn.ID)); err != nil {
			return "", err
		}
	}
	conn.EventsTokenEnc = enc
	return e.URLOf(token), nil
}

// Rotate replaces connection id's events URL: the old one answers 404 from now
// on, and callbacks registered at it are registered again at the new one.
func (e *Events) Rotate(ctx context.Context, id, actor string) (string, error) {
	conn, err := e.store.ConnectionByID(ctx, id)
	if err != nil {
		return "", err
	}
	if conn.Status == models.StatusDisconnected {
		return "", models.ErrDisconnected
	}
	token, hash, enc, err := e.newToken(id)
	if err != nil {
		return "", err
	}
	ctx = auditing(ctx, models.AuditEventsURLRotated, TargetConnection, id,
		fmt.Sprintf("Events URL of connection %s (account %s) replaced; the old URL answers 404", id, conn.AccountID))
	ev := &models.Event{ConnectionID: &id, AppID: &conn.AppID, Type: models.EventEventsURLRotated, Actor: actor,
		Message: "Events URL replaced: the old URL answers 404 from now on. Update it in GetResponse's webhook settings; registered callbacks move by themselves."}
	if _, err := e.store.SetEventsToken(ctx, id, hash, enc, true, ev); err != nil {
		return "", err
	}
	return e.URLOf(token), nil
}

// newToken makes an events token for connection id: 256 random bits, its hash
// (which finds the connection) and its sealed form (which shows the URL again).
func (e *Events) newToken(id string) (token, hash, enc string, err error) {
	token = models.RandomToken(32)
	enc, err = e.box.Seal(token, eventsTokenAAD(id))
	return token, hashToken(token), enc, err
}

// validEventsToken reports whether s looks like an events token (52 characters
// of lowercase base32), so that nothing else costs a database read.
func validEventsToken(s string) bool {
	if len(s) != 52 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// Target finds the connection an events URL's token names, with one indexed
// read, and takes one event from its rate limit. A token of no live connection
// gives models.ErrNotFound (a disconnect erased its token); too many events,
// *ErrEventsRateLimited.
func (e *Events) Target(ctx context.Context, token string) (*models.EventsTarget, error) {
	if !validEventsToken(token) {
		return nil, models.ErrNotFound
	}
	t, err := e.store.EventsTargetByHash(ctx, hashToken(token))
	if err != nil {
		return nil, err
	}
	if t.Status == models.StatusDisconnected {
		return nil, models.ErrNotFound
	}
	if ok, wait := e.limiter.allow(t.ID, time.Now()); !ok {
		return nil, &ErrEventsRateLimited{RetryAfter: wait}
	}
	return t, nil
}

// Receive keeps one event for target (found by Target): once per X-Webhook-ID,
// or for an event without one, once per content within a minute. It reports
// whether the event is new; either way GetResponse's delivery is done. A request
// that is no GetResponse event gives *BadEventError.
func (e *Events) Receive(ctx context.Context, target *models.EventsTarget, in InboundRequest) (bool, error) {
	p, err := parseInbound(in)
	if err != nil {
		return false, err
	}
	now := e.Now()
	ev := &models.InboundEvent{ConnectionID: target.ID, AppID: target.AppID, Source: p.source, Type: p.typ,
		WebhookID: p.webhookID, AccountID: p.accountID, Payload: p.payload, ReceivedAt: now}
	previous := ""
	window := time.Duration(0)
	if p.webhookID != "" {
		ev.DedupKey = "wh:" + p.webhookID
	} else {
		bucket := now.Unix() / int64(eventsDedupWindow/time.Second)
		ev.DedupKey = "ct:" + p.contentHash + ":" + strconv.FormatInt(bucket, 10)
		previous, window = "ct:"+p.contentHash+":"+strconv.FormatInt(bucket-1, 10), eventsDedupWindow
	}
	stored, err := e.commits.commit(ctx, models.NewInbound{Event: ev, Previous: previous, Window: window})
	if err != nil {
		return false, err
	}
	if stored {
		e.Kick()
	}
	return stored, nil
}

// Kick makes RunRelay look for events now.
func (e *Events) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// RunRelay relays stored events until ctx ends.
func (e *Events) RunRelay(ctx context.Context) {
	for {
		n, err := e.RelayOnce(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Error("relaying GetResponse events failed", "error", err)
		}
		if n >= relayBatch && err == nil {
			continue
		}
		wait := time.Duration(float64(e.Interval) * (0.8 + 0.4*rand.Float64()))
		select {
		case <-ctx.Done():
			return
		case <-e.kick:
		case <-time.After(wait):
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(relayGather):
		}
	}
}

// RelayOnce relays one batch of stored events, in one transaction: a timeline
// entry each and, where the app's webhook takes them, a getresponse.event
// delivery. It returns how many it relayed.
func (e *Events) RelayOnce(ctx context.Context) (int, error) {
	if ctx.Err() != nil {
		return 0, nil
	}
	now := e.Now()
	owner := e.owner + "/" + strconv.FormatUint(e.pass.Add(1), 10)
	events, err := e.store.ClaimInbound(ctx, owner, now, relayLease, relayBatch)
	if err != nil || len(events) == 0 {
		return 0, err
	}
	if err := e.store.RelayInbound(context.WithoutCancel(ctx), owner, events, now, describeInbound); err != nil {
		if errors.Is(err, models.ErrLeaseLost) {
			return 0, nil // another process relays them
		}
		return 0, err
	}
	if e.webhooks != nil {
		e.webhooks.Kick()
	}
	return len(events), nil
}

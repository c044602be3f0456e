package tokens

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
)

// proxyFleet shares each account's limits between the replicas on one PostgreSQL
// database without a statement per call: every replica paces its calls in memory
// within its share, and rebalances the shares of the accounts it is using a few
// times a second (and at once when an account it has no share of gets a call).
// A rebalancing is one short transaction under an advisory lock that no other
// replica's overlaps: it publishes what the replica wants and holds
// (models.ProxyShare), reads what the others hold, and takes the replica's fair
// part of what is free. The held slots of an account never add up to more than
// ten: a replica gives slots back only as its calls end (and its calls of the
// last second, for the per-second limit), and takes only what the others do not
// hold. A share lives for fleetTTL unless renewed, so a replica that dies frees
// its shares within seconds. When the database cannot be reached for longer than
// that, each replica falls back to the whole limits alone and says so.
type proxyFleet struct {
	store   *models.Store
	pace    *pacer
	replica string
	log     *slog.Logger
	poked   chan struct{}
	// Only run's goroutine uses these.
	lastOK   time.Time
	fallback bool
	held     bool // whether the database holds shares of this replica
	ticks    int
}

const (
	// fleetTick is how often a busy replica rebalances.
	fleetTick = 250 * time.Millisecond
	// fleetTTL is how long a share lives without a rebalancing.
	fleetTTL = 2 * time.Second
	// fleetPokeGap spaces the rebalancings that queued calls ask for: a burst
	// gets its share within milliseconds, and a replica whose calls keep
	// queueing behind other replicas' shares rebalances at most 20 times a second,
	// whatever its calls.
	fleetPokeGap = 50 * time.Millisecond
)

func newProxyFleet(store *models.Store, pace *pacer, log *slog.Logger) *proxyFleet {
	f := &proxyFleet{store: store, pace: pace, replica: "proxy/" + models.RandomToken(6), log: log, poked: make(chan struct{}, 1)}
	pace.shared = true
	pace.poke = func() {
		select {
		case f.poked <- struct{}{}:
		default:
		}
	}
	return f
}

// dbKey names an account in the shared tables (the in-process key holds a NUL).
func dbKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:16])
}

// run rebalances until ctx ends, then gives the replica's shares back.
func (f *proxyFleet) run(ctx context.Context) {
	t := time.NewTicker(fleetTick)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			if f.held {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				_ = f.store.ReleaseProxyShares(rctx, f.replica) // they expire anyway
				cancel()
			}
			return
		case <-t.C:
		case <-f.poked:
			if wait := fleetPokeGap - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					continue
				case <-time.After(wait):
				}
			}
		}
		last = time.Now()
		f.tick(ctx)
	}
}

// tick rebalances once.
func (f *proxyFleet) tick(ctx context.Context) {
	demand := f.pace.demand()
	if len(demand) == 0 && !f.held {
		return
	}
	now := time.Now()
	keys := make([]string, len(demand))
	byDB := make(map[string]paceDemand, len(demand))
	for i, d := range demand {
		keys[i] = dbKey(d.key)
		byDB[keys[i]] = d
	}
	limit := f.pace.limits.InFlight
	shares := make(map[string]int, len(demand))
	blockedAt := map[string]time.Time{}
	f.ticks++
	// A database that hangs rather than fails must not hold the shares for ever:
	// past fleetTTL the replica paces alone (below).
	rctx, cancel := context.WithTimeout(ctx, fleetTTL)
	defer cancel()
	err := f.store.RebalanceProxyShares(rctx, f.replica, keys, now, now.Add(fleetTTL), f.ticks%240 == 0,
		func(others []models.ProxyShare, blocked map[string]time.Time) []models.ProxyShare {
			perKey := map[string][]models.ProxyShare{}
			for _, o := range others {
				perKey[o.AccountKey] = append(perKey[o.AccountKey], o)
			}
			mine := make([]models.ProxyShare, 0, len(keys))
			for _, k := range keys {
				d := byDB[k]
				grant := fleetGrant(limit, f.replica, d.want, perKey[k])
				shares[d.key] = grant
				if until, ok := blocked[k]; ok {
					blockedAt[d.key] = until
				}
				mine = append(mine, models.ProxyShare{AccountKey: k, Want: d.want, Held: max(grant, d.held)})
			}
			return mine
		})
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if !f.fallback && time.Since(f.lastOK) > fleetTTL {
			f.fallback = true
			f.log.Warn("proxy: the fleet's shares of GetResponse's limits cannot be agreed; this replica paces with the whole limits alone until the database answers", "error", err)
		}
		if !f.fallback {
			return // the shares agreed last still hold
		}
		for _, d := range demand {
			shares[d.key] = limit
		}
		f.pace.setShares(shares, nil)
		return
	}
	f.lastOK, f.held = now, len(keys) > 0
	if f.fallback {
		f.fallback = false
		f.log.Info("proxy: the fleet shares GetResponse's limits again")
	}
	f.pace.setShares(shares, blockedAt)
}

// fleetGrant is the slots a replica takes of an account: its fair part of limit
// among the replicas that want some (max-min fair, the same on every replica),
// but no more than the others leave free. A replica using the account keeps at
// least one slot while it is free, so its next call needs no rebalancing.
func fleetGrant(limit int, me string, want int, others []models.ProxyShare) int {
	free := limit
	type claim struct {
		replica string
		want    int
	}
	claims := []claim{{me, max(want, 1)}}
	for _, o := range others {
		free -= o.Held
		if o.Want > 0 {
			claims = append(claims, claim{o.Replica, o.Want})
		}
	}
	slices.SortFunc(claims, func(a, b claim) int { return cmp.Or(cmp.Compare(a.want, b.want), cmp.Compare(a.replica, b.replica)) })
	target, left := 0, limit
	for i, c := range claims {
		g := min(c.want, left/(len(claims)-i))
		left -= g
		if c.replica == me {
			target = g
		}
	}
	return max(min(target, free), 0)
}

// observe shares GetResponse's request to wait with the fleet at once.
func (f *proxyFleet) observe(ctx context.Context, key string, status int, h http.Header) {
	if d := getresponse.BackoffAfter(status, h); d > 0 {
		_ = f.store.BlockProxy(context.WithoutCancel(ctx), dbKey(key), time.Now().Add(d)) // this replica's pacer holds it anyway
	}
}

package services

import (
	"context"
	"sync"
)

// Token requests inside the margin for a token still valid beyond the floor do not
// wait for its refresh: they nudge one of a few background workers, which refresh
// the connection if it is still due by then. Few workers keep few refreshes in
// flight (a crash's exposure), and a burst of requests for one connection is one
// nudge.

const (
	nudgeWorkers = 2
	nudgeQueue   = 1024
)

type nudges struct {
	once    sync.Once
	queue   chan string
	pending sync.Map // IDs queued and not yet taken
}

func (n *nudges) ch() chan string {
	n.once.Do(func() { n.queue = make(chan string, nudgeQueue) })
	return n.queue
}

// nudge asks the background to refresh id soon; it never blocks, and a connection
// already queued is not queued twice. A full queue drops the nudge: the refresher
// picks the connection up anyway.
func (t *Tokens) nudge(id string) {
	if _, queued := t.nudged.pending.LoadOrStore(id, true); queued {
		return
	}
	select {
	case t.nudged.ch() <- id:
	default:
		t.nudged.pending.Delete(id)
	}
}

// RunNudges refreshes nudged connections until ctx ends.
func (t *Tokens) RunNudges(ctx context.Context) {
	var wg sync.WaitGroup
	for range nudgeWorkers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case id := <-t.nudged.ch():
					t.nudged.pending.Delete(id)
					t.refreshNudged(ctx, id)
				}
			}
		})
	}
	wg.Wait()
}

// refreshNudged refreshes id if a read says it is still due (no write otherwise),
// without waiting for another worker's lease. It is an automatic refresh: while
// the gate is shut the nudge is dropped (the refresher picks the connection up
// once it opens), and otherwise it waits for its turn at the refresh rate.
func (t *Tokens) refreshNudged(ctx context.Context, id string) {
	if t.RefreshesPaused(ctx) != "" {
		return
	}
	row, err := t.tokenRow(ctx, id)
	if err != nil || !t.policy.onDemand(stateOfRow(row), t.Now()) || row.Leased(t.Now()) || t.pending.get(id) != nil {
		return
	}
	if app, err := t.App(ctx, row.AppID); err != nil || !app.Health.Healthy() {
		return
	}
	if _, err := t.refresh(ctx, id, "system", t.policy.OnDemand, refreshRules{automatic: true}); err != nil && ctx.Err() == nil {
		t.log.Debug("background refresh after a token request", "connection", id, "error", err)
	}
}

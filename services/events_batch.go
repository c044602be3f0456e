package services

import (
	"context"
	"sync"

	"github.com/grconnect/grconnect/models"
)

// groupCommit writes the events that arrive while a write is under way together,
// in the next write: one transaction for many events, as the single SQLite writer
// needs to take a thousand events a second. There is no goroutine of its own: the
// first request to find no write under way leads — it writes what is queued, its
// own event included, answers the others, and hands the lead to the first request
// that queued meanwhile.
type groupCommit struct {
	store   *models.Store
	mu      sync.Mutex
	queue   []*pendingInbound
	writing bool
}

// pendingInbound is one request's event waiting for its write.
type pendingInbound struct {
	in   models.NewInbound
	done chan commitResult // buffered: a result, or the lead
}

type commitResult struct {
	kept bool
	err  error
	lead bool // write the queue now
}

// commit keeps in (unless it is a duplicate) and reports whether it was kept,
// once it is committed.
func (g *groupCommit) commit(ctx context.Context, in models.NewInbound) (bool, error) {
	p := &pendingInbound{in: in, done: make(chan commitResult, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, p)
	lead := !g.writing
	g.writing = true
	g.mu.Unlock()
	if !lead {
		r := <-p.done
		if !r.lead {
			return r.kept, r.err
		}
	}
	g.mu.Lock()
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()
	items := make([]models.NewInbound, len(batch))
	for i, q := range batch {
		items[i] = q.in
	}
	// A started write finishes even if this request's caller gives up: the others
	// in the batch wait for it.
	kept, err := g.store.StoreInboundEvents(context.WithoutCancel(ctx), items)
	var own commitResult
	for i, q := range batch {
		r := commitResult{err: err}
		if err == nil {
			r.kept = kept[i]
		}
		if q == p {
			own = r
			continue
		}
		q.done <- r
	}
	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- commitResult{lead: true}
	} else {
		g.writing = false
	}
	g.mu.Unlock()
	return own.kept, own.err
}

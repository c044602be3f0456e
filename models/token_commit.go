package models

import (
	"context"
	"errors"
	"sync"

	"gorm.io/gorm"
)

// New token pairs are group-committed. Every commit waits for the disk (SQLite's
// one writer commits one transaction at a time; PostgreSQL flushes its log for
// each), and each refresh's UPDATE rewrites the same few index pages as its
// neighbours' (the refresher takes connections in expiry order): the pairs that
// arrive while one commit runs are written together in the next, so a thousand
// refreshes a second cost tens of commits, not a thousand. No pair waits for
// anything but the commit already running: the first to arrive is written at
// once, on its own.

// maxTokenCommit caps how many pairs share one transaction.
const maxTokenCommit = 128

// tokenWrite is one pair waiting to be stored, and what storing it gave.
type tokenWrite struct {
	prev   *Connection
	r      RefreshResult
	conn   *Connection
	events []*Event
	err    error
	// wake is closed when the pair is stored, or when its caller is to write the
	// next batch (lead).
	wake chan struct{}
	lead bool
}

// tokenCommits is the queue of pairs waiting to be written. The caller
// that finds no commit running writes a batch from the queue's head (its own pair
// first); whoever waits at the head then writes the next, so no caller stores
// other callers' pairs for longer than one commit.
type tokenCommits struct {
	mu      sync.Mutex
	queue   []*tokenWrite
	writing bool
}

// storeTokens stores a pair with whatever else waits (see above).
func (s *Store) storeTokens(ctx context.Context, prev *Connection, r RefreshResult) (*Connection, []*Event, error) {
	w := &tokenWrite{prev: prev, r: r, wake: make(chan struct{})}
	q := &s.tokenCommits
	q.mu.Lock()
	q.queue = append(q.queue, w)
	if q.writing {
		q.mu.Unlock()
		<-w.wake // the writers answer every pair they take
		q.mu.Lock()
		lead := w.lead
		q.mu.Unlock()
		if !lead {
			return w.conn, w.events, w.err
		}
	} else {
		q.writing = true
		q.mu.Unlock()
	}
	q.mu.Lock()
	batch := q.queue[:min(len(q.queue), maxTokenCommit)]
	q.queue = q.queue[len(batch):]
	q.mu.Unlock()
	s.writeTokens(context.WithoutCancel(ctx), batch)
	q.mu.Lock()
	if len(q.queue) > 0 {
		next := q.queue[0]
		next.lead = true
		close(next.wake)
	} else {
		q.writing = false
	}
	q.mu.Unlock()
	for _, b := range batch {
		if b != w {
			close(b.wake)
		}
	}
	return w.conn, w.events, w.err
}

// writeTokens stores a batch of pairs in one transaction. A pair written over a
// newer one or a disconnected connection is left out with its own error; when the
// transaction fails (on PostgreSQL, a deadlock with another replica's batch), each
// pair is tried on its own, so one pair's failure is never another's.
func (s *Store) writeTokens(ctx context.Context, batch []*tokenWrite) {
	if len(batch) == 1 {
		b := batch[0]
		b.conn, b.events, b.err = applyRefresh(s.db.WithContext(ctx), b.prev, b.r)
		return
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, b := range batch {
			b.conn, b.events, b.err = applyRefresh(tx, b.prev, b.r)
			if b.err != nil && !errors.Is(b.err, ErrDisconnected) && !errors.Is(b.err, ErrSuperseded) {
				return b.err
			}
		}
		return nil
	})
	if err == nil {
		return
	}
	for _, b := range batch {
		b.conn, b.events, b.err = applyRefresh(s.db.WithContext(ctx), b.prev, b.r)
	}
}

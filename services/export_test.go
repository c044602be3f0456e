package services

import "time"

// JustStartedForTest makes t a process whose heartbeats have just begun: it has
// not settled yet (engine_replicas.go), as a replica starting as PostgreSQL comes
// back.
func (t *Tokens) JustStartedForTest() {
	t.beat.mu.Lock()
	defer t.beat.mu.Unlock()
	t.beat.running, t.beat.started, t.beat.streak = true, t.Now(), time.Now()
}

// SettledForTest reports whether t may judge other processes' leases.
func (t *Tokens) SettledForTest() bool { return t.settled() }

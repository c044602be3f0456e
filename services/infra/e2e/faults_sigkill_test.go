package e2e

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// killRecord is one SIGKILL of a refreshing process.
type killRecord struct {
	pid           int
	before, after time.Time // the signal; the process reaped
	leased        []string  // connections whose lease the process held when it died
	due           []string  // connections due for a refresh when it died (its last committed state)
}

// sigkillRun refreshes continuously (every token due 5 s after its refresh; the
// fake's answers take 50–150 ms after it rotated the token) and SIGKILLs the
// process kills times at random moments, starting the next process at once. The
// first kill lands inside the first refresh wave, where every connection is due at
// once (when a random number of that wave's refreshes were sent), so that due
// connections wait unsent at it. A final
// clean process then refreshes every connection once more, and the run counts
// the connections lost: needs_reconnect, or a stored refresh token the fake
// refuses.
//
// Strict rotation: a refresh in flight at a kill may be lost (GetResponse rotated
// the token, the answer died with the process), nothing else; each loss must be
// explained in the timeline. Grace rotation (graceRotation): nothing is lost.
func sigkillRun(h *faultRun, grace bool, conns, kills int) {
	rotation := getresponsetest.RotationStrict
	if grace {
		rotation = getresponsetest.RotationGrace
	}
	in := h.newInstall(installOpts{
		fake:     getresponsetest.Options{Rotation: rotation, RotationGrace: graceRotation, ExpiresIn: faultTokenLife},
		latency:  [2]time.Duration{50 * time.Millisecond, 150 * time.Millisecond},
		settings: refreshSettings(),
	})
	// Customers connect through a process that leaves their tokens alone (a 1 m
	// margin); the next one finds every token due at once: the first refresh wave.
	p := in.serve("GRCONNECT_REFRESH_MARGIN=1m")
	t0 := time.Now()
	if err := in.connect(conns, 8); err != nil {
		h.fatalf("connect %d customers: %v", conns, err)
	}
	lastConnect := time.Now()
	h.logf("%d connections made through the flow in %s", conns, lastConnect.Sub(t0).Round(time.Millisecond))
	if err := p.stop(); err != nil {
		h.fatalf("stop: %v", err)
	}
	time.Sleep(time.Until(lastConnect.Add(faultTokenLife - faultMargin + 500*time.Millisecond)))
	base := in.rec.count()
	p = in.serve()

	var ks []killRecord
	for i := range kills {
		if i == 0 {
			// Inside the first wave: after 1…conns/2 of its refreshes were sent.
			want := base + 1 + h.rng.IntN(max(1, conns/2))
			deadline := time.Now().Add(15 * time.Second)
			for in.rec.count() < want && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
			}
		} else {
			h.sleep(h.form.killGap[0], h.form.killGap[1])
		}
		k := killRecord{pid: p.pid()}
		k.before, k.after = p.kill()
		var err error
		if k.leased, err = in.leasedBy(k.pid); err != nil {
			h.errorf("read leases after kill %d: %v", i+1, err)
		}
		k.due = in.dueAt(k.before)
		ks = append(ks, k)
		p = in.serve()
		h.logf("kill %d: pid %d held %d leases, %d connections were due; next process ready %s after the kill",
			i+1, k.pid, len(k.leased), len(k.due), time.Since(k.before).Round(time.Millisecond))
	}

	finalStart := time.Now()
	pending := in.waitSettled(finalStart, 2*time.Minute+time.Duration(conns/40)*time.Second)
	h.logf("final clean run settled in %s (%d unsettled: %s)", time.Since(finalStart).Round(100*time.Millisecond), len(pending), brief(pending))
	if len(pending) > 0 {
		h.errorf("%d connections neither refreshed by the final clean process nor marked needs_reconnect within its time: %s", len(pending), brief(pending))
	}
	ls := in.countLosses(p)
	calls := in.rec.snapshot()
	issued, err := fakeRefreshTokens(in.fake)
	if err != nil {
		h.fatalf("fake snapshot: %v", err)
	}
	if len(calls) < conns {
		h.errorf("refreshing was not continuous: %d refresh calls for %d connections", len(calls), conns)
	}

	// In flight at each kill, and how long due connections waited after it. A
	// connection still waiting from an earlier kill counts for that kill only.
	inflight, unansweredSet := map[string]bool{}, map[string]bool{}
	windowed, unanswered := 0, 0
	starts := in.refreshStarts(calls, issued)
	var idleWaits, flightWaits []time.Duration
	idleLeased := 0
	counted := map[string]int{} // connection → the kill whose wait it counts for
	waiting := func(id string, k int) bool {
		j, ok := counted[id]
		if !ok {
			return false
		}
		for _, s := range starts[id] {
			if s.After(ks[j].after) && s.Before(ks[k].before) {
				return false
			}
		}
		return true
	}
	for i, k := range ks {
		u, a := inFlight(calls, k.before, k.after)
		windowed += len(u) + len(a)
		unanswered += len(u)
		for id := range in.connectionsOfCalls(u, issued) {
			unansweredSet[id] = true
		}
		atKill := in.connectionsOfCalls(append(u, a...), issued)
		for id := range atKill {
			inflight[id] = true
			flightWaits = append(flightWaits, waitAfter(starts[id], k))
			counted[id] = i
		}
		for _, id := range k.due {
			if atKill[id] || waiting(id, i) {
				continue
			}
			counted[id] = i
			idleWaits = append(idleWaits, waitAfter(starts[id], k))
			if slices.Contains(k.leased, id) {
				idleLeased++
			}
		}
	}
	lostAnswered := 0
	for _, id := range ls.lost {
		if inflight[id] && !unansweredSet[id] {
			lostAnswered++
		}
	}
	beyond := minus(ls.lost, inflight)
	h.figure("%d kills, %d connections, %d refresh calls; at the kills %d refreshes in flight (%d unanswered, %d answered within %s before); lost %d (needs_reconnect %d, dead stored token %d): %d answered before the kill but not committed, %d beyond the refreshes in flight; %d explained; refresh calls with a dead token %d, grace refreshes %d",
		len(ks), ls.total, len(calls), windowed, unanswered, windowed-unanswered, inFlightWindow, len(ls.lost), len(ls.needsReconnect), len(ls.deadToken),
		lostAnswered, len(beyond), len(ls.explained), in.fake.Stat(getresponsetest.StatDeadRefreshToken), in.fake.Stat(getresponsetest.StatGraceRefresh))
	h.figure("after a kill: due connections not in flight waited %s (%d of them leased by the dead process); in-flight ones waited %s",
		durations(idleWaits), idleLeased, durations(flightWaits))
	for i, id := range ls.lost {
		if i == 10 {
			h.logf("… and %d more lost", len(ls.lost)-i)
			break
		}
		h.logf("lost %s (in flight at a kill: %v): %s", id, inflight[id], ls.explanations[id])
	}

	if grace {
		h.goal("no_loss", fmt.Sprintf("with a provider grace period (%s), no connection lost across %d kills", graceRotation, len(ks)),
			len(ls.lost) == 0, "%d of %d lost: %s", len(ls.lost), ls.total, brief(ls.lost))
		return
	}
	h.goal("loss_only_in_flight", "strict rotation: no loss beyond the refreshes in flight at the kills",
		len(beyond) == 0, "%d of %d lost over %d kills; %d refreshes were in flight at the kills; %d lost connections were not in flight at any kill: %s",
		len(ls.lost), ls.total, len(ks), len(inflight), len(beyond), brief(beyond))
	h.goal("loss_explained", `each lost connection's timeline explains it ("lost in a crash during refresh")`,
		len(ls.explained) == len(ls.lost), "%d of %d lost connections have \"crash\" in their timeline; unexplained: %s",
		len(ls.explained), len(ls.lost), brief(minus(ls.lost, setOf(ls.explained))))
	worst := slices.Max(append(idleWaits, 0))
	h.goal("after_kill_rest_at_once", fmt.Sprintf("after a kill, due connections that were not in flight are refreshed by the next process at once (≤ %s)", atOnce),
		worst <= atOnce, "due connections not in flight at a kill waited %s (%d of them leased by the dead process); the in-flight ones waited %s",
		durations(idleWaits), idleLeased, durations(flightWaits))
}

// dueAt returns the live connections due for a refresh at t as the database says
// (expiry inside the margin; the state the dead process committed).
func (in *install) dueAt(t time.Time) []string {
	cs, err := in.dbConnections()
	if err != nil {
		in.h.errorf("read connections: %v", err)
		return nil
	}
	var due []string
	for _, c := range cs {
		if c.Status.Live() && c.ExpiresAt != nil && !c.ExpiresAt.Add(-faultMargin).After(t) {
			due = append(due, c.ID)
		}
	}
	return due
}

// refreshStarts maps each connection to the start times of its refresh calls.
func (in *install) refreshStarts(calls []refreshCall, issued map[string]fakeRefreshToken) map[string][]time.Time {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := map[string][]time.Time{}
	for _, c := range calls {
		if rt, ok := issued[c.rt]; ok {
			id := in.connOf[rt.AccountID]
			out[id] = append(out[id], c.start)
		}
	}
	for _, ts := range out {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	}
	return out
}

// waitAfter is how long after a kill the next refresh call of a connection came
// (until now when none came).
func waitAfter(starts []time.Time, k killRecord) time.Duration {
	for _, s := range starts {
		if s.After(k.after) {
			return s.Sub(k.before)
		}
	}
	return time.Since(k.before)
}

// setOf makes a set of IDs.
func setOf(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// The scenarios of issue 28: a PostgreSQL outage longer than the lease with pairs
// held and a second replica starting at the restart, a killed replica's leases
// ended by heartbeats, and the refresh rate held under heavy /token traffic (the
// disk-full scenario also measures the refreshes that token traffic starts).

// tokenLoad sends POST …/token at a fixed pace over some connections until ended
// (an open loop), keeping every answer.
type tokenLoad struct {
	stop    chan struct{}
	done    sync.WaitGroup
	mu      sync.Mutex
	answers []probe
}

// startTokenLoad starts rate token requests a second to base, spread at random over ids.
func (h *faultRun) startTokenLoad(in *install, base string, ids []string, rate int) *tokenLoad {
	l := &tokenLoad{stop: make(chan struct{})}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var pick sync.Mutex
	send := func() {
		pick.Lock()
		id := ids[h.rng.IntN(len(ids))]
		pick.Unlock()
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/connections/"+id+"/token", nil)
		req.Header.Set("Authorization", "Bearer "+in.apiKey)
		code := 0
		if res, err := hc.Do(req); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			code = res.StatusCode
		}
		l.mu.Lock()
		l.answers = append(l.answers, probe{at: time.Now(), code: code, ok: code == http.StatusOK})
		l.mu.Unlock()
	}
	l.done.Go(func() {
		start, sent := time.Now(), 0
		ticker := time.NewTicker(10 * time.Millisecond)
		defer ticker.Stop()
		var inflight sync.WaitGroup
		defer inflight.Wait()
		for {
			select {
			case <-l.stop:
				return
			case now := <-ticker.C:
				due := int(now.Sub(start).Seconds()*float64(rate)) - sent
				sent += due
				for range due {
					inflight.Go(send)
				}
			}
		}
	})
	return l
}

// end stops the load and returns its answers, in the order they came.
func (l *tokenLoad) end() []probe {
	close(l.stop)
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.SortFunc(l.answers, func(a, b probe) int { return a.at.Compare(b.at) })
	return l.answers
}

// okCount counts the probes answered 200.
func okCount(ps []probe) int {
	n := 0
	for _, p := range ps {
		if p.ok {
			n++
		}
	}
	return n
}

// mostInWindow is the most refresh calls that started within any window of
// length d (sliding), and when that window began.
func mostInWindow(calls []refreshCall, d time.Duration) (int, time.Time) {
	starts := make([]time.Time, len(calls))
	for i, c := range calls {
		starts[i] = c.start
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	most, at := 0, time.Time{}
	for i, j := 0, 0; i < len(starts); i++ {
		for j < len(starts) && starts[j].Sub(starts[i]) < d {
			j++
		}
		if j-i > most {
			most, at = j-i, starts[i]
		}
	}
	return most, at
}

// callsBetween returns the refresh calls that started in [from, to).
func callsBetween(calls []refreshCall, from, to time.Time) []refreshCall {
	var out []refreshCall
	for _, c := range calls {
		if !c.start.Before(from) && c.start.Before(to) {
			out = append(out, c)
		}
	}
	return out
}

// needsReconnectEvents counts every connection.needs_reconnect ever recorded.
func (in *install) needsReconnectEvents() int64 {
	var n int64
	if err := in.db().DB().Model(&models.Event{}).Where("type = ?", models.EventNeedsReconnect).Count(&n).Error; err != nil {
		in.h.errorf("count needs_reconnect events: %v", err)
	}
	return n
}

// outageLag is how long after PostgreSQL's restart replica A's own path to it
// stays down: B is up by then, and has not settled yet (10 s of heartbeats).
const outageLag = 6 * time.Second

// tcpPath forwards TCP connections to a server; while blocked it drops every
// forwarded connection and every new one, as a network path that is down.
type tcpPath struct {
	ln      net.Listener
	mu      sync.Mutex
	blocked bool
	conns   []net.Conn
}

// startTCPPath listens on a loopback port and forwards to target.
func (h *faultRun) startTCPPath(target string) *tcpPath {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.fatalf("%v", err)
	}
	p := &tcpPath{ln: ln}
	h.cleanup(func() { ln.Close(); p.block() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			blocked := p.blocked
			p.mu.Unlock()
			if blocked {
				in.Close()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

// block drops every connection and refuses new ones until unblock.
func (p *tcpPath) block() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *tcpPath) unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = false
}

// addr is where the path listens.
func (p *tcpPath) addr() string { return p.ln.Addr().String() }

// postgresOutageRun (issue 28, point 1): two replicas on PostgreSQL. Replica A
// refreshes in strict rotation with answers that take a second or so; PostgreSQL
// stops while refreshes are in flight, so A receives pairs it cannot store, and
// stays down longer than the lease (form.outageStop against form.outageLease);
// replica B starts as PostgreSQL comes back. A reaches PostgreSQL again only a
// few seconds after B is up (its own path to the database stays down for
// outageLag), so B has every chance to take the ended leases of A's held pairs
// and refresh with the tokens they replaced. Goals: no connection ever marked
// needs_reconnect, no refresh presents a dead token, and A's /token answers from
// what it holds throughout the outage (point 3).
func postgresOutageRun(h *faultRun) {
	if pgBin() == "" {
		if inCI() {
			h.fatalf("CI=true, but no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
		}
		h.skipf("needs PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
	}
	pg := h.startPostgres()
	settings := refreshSettings()
	if h.form.outageLease > 0 {
		settings = append(settings, "GRCONNECT_REFRESH_LEASE="+h.form.outageLease.String())
	}
	lease := h.form.outageLease
	if lease == 0 {
		lease = time.Minute // the default
	}
	in := h.newInstall(installOpts{
		database: pg.dsn,
		fake:     getresponsetest.Options{Rotation: getresponsetest.RotationStrict, ExpiresIn: faultTokenLife},
		latency:  [2]time.Duration{800 * time.Millisecond, 1500 * time.Millisecond},
		settings: settings,
	})
	path := h.startTCPPath("127.0.0.1:" + pg.port)
	a := in.serve("GRCONNECT_DATABASE=" + strings.Replace(pg.dsn, "127.0.0.1:"+pg.port, path.addr(), 1))
	if err := in.connect(h.form.outageConns, 8); err != nil {
		h.fatalf("connect %d customers: %v", h.form.outageConns, err)
	}
	ids := in.connectionIDs()
	time.Sleep(faultTokenLife - faultMargin + 3*time.Second) // refreshing in its stride
	for _, id := range ids {
		if code, ok, err := in.token(id); !ok {
			h.fatalf("/token before the outage: %d %v", code, err)
		}
	}
	load := h.startTokenLoad(in, a.url, ids, 20)
	var nextProxy int
	proxied := startPoller(250*time.Millisecond, func() (int, bool) {
		id := ids[nextProxy%len(ids)]
		nextProxy++
		code, _, _ := in.api(http.MethodGet, "/api/v1/connections/"+id+"/proxy/from-fields", nil)
		return code, code == http.StatusOK
	})
	if !in.rec.waitInFlight(4, 15*time.Second) {
		h.logf("no four refreshes in flight at once within 15 s; stopping PostgreSQL anyway")
	}
	atStop := in.rec.inFlightNow()
	stopped := time.Now()
	path.block()
	if err := pg.stopImmediate(); err != nil {
		h.fatalf("%v", err)
	}
	time.Sleep(h.form.outageStop)
	if err := pg.start(); err != nil {
		h.fatalf("%v", err)
	}
	restarted := time.Now()
	h.logf("PostgreSQL stopped for %s (lease %s)", restarted.Sub(stopped).Round(100*time.Millisecond), lease)
	b := in.serve("GRCONNECT_ADDR=" + freeLoopback(h)) // started as PostgreSQL came back
	bReady := time.Since(restarted)
	time.Sleep(time.Until(restarted.Add(outageLag)))
	path.unblock()
	aBack := time.Since(restarted)
	pending := in.waitRefreshed(restarted, 2*time.Minute, false)
	if len(pending) > 0 {
		h.errorf("%d connections neither refreshed after PostgreSQL came back nor marked needs_reconnect: %s", len(pending), in.describe(pending, restarted))
	}
	answers, proxyAnswers := load.end(), proxied.end()
	// Every held pair is stored or dropped before anything is counted.
	held := a.log.count("a new token pair could not be stored")
	var landed, dropped int
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		landed, dropped = a.log.count("a pending token pair was stored"), a.log.count("a pending token pair was dropped")
		if landed+dropped >= held || time.Now().After(deadline) {
			break
		}
	}
	marked := in.needsReconnectEvents()
	if err := b.stop(); err != nil {
		h.logf("replica B stopped with %v", err)
	}
	ls := in.countLosses(a)
	dead := in.fake.Stat(getresponsetest.StatDeadRefreshToken)
	during := between(answers, stopped.Add(time.Second), restarted)
	served := okCount(during)
	proxyDuring := between(proxyAnswers, stopped.Add(time.Second), restarted)
	firstLanded := "never"
	if line, ok := a.log.first("a pending token pair was stored"); ok {
		firstLanded = line.at.Sub(restarted).Round(100 * time.Millisecond).String()
	}
	h.figure("%d connections, 2 replicas; PostgreSQL stopped %s (lease %s) with %d refreshes in flight; pairs held by replica A: %d (stored after the restart: %d, the first %s after it; dropped: %d); replica B ready %s after the restart, replica A's path to PostgreSQL back %s after it; needs_reconnect events %d; refreshes with a dead token %d; lost %d (needs_reconnect %d, dead stored token %d); A's /token during the outage: %s; proxied calls through A: %s",
		ls.total, restarted.Sub(stopped).Round(100*time.Millisecond), lease, atStop, held, landed, firstLanded, dropped, bReady.Round(100*time.Millisecond),
		aBack.Round(100*time.Millisecond), marked, dead, len(ls.lost), len(ls.needsReconnect), len(ls.deadToken), codes(during), codes(proxyDuring))
	if bReady >= outageLag {
		h.errorf("replica B was ready only %s after the restart, after replica A was back: B had no window to take A's leases", bReady.Round(100*time.Millisecond))
	}
	if held == 0 {
		h.errorf("replica A held no received pair through the outage: the scenario tested nothing (%d refreshes were in flight at the stop)", atStop)
	}
	want := fmt.Sprintf("PostgreSQL down %s (longer than the %s lease) with pairs held, a second replica started at the restart", h.form.outageStop, lease)
	h.goal("no_needs_reconnect", want+": no connection ever marked needs_reconnect, none lost",
		marked == 0 && len(ls.lost) == 0, "%d needs_reconnect events; %d of %d lost (needs_reconnect %d, dead stored token %d); %d pairs held, %d stored after the restart",
		marked, len(ls.lost), ls.total, len(ls.needsReconnect), len(ls.deadToken), held, landed)
	h.goal("no_dead_token_refresh", want+": no refresh presents a refresh token a held pair replaced",
		dead == 0, "%d refresh calls presented a dead refresh token", dead)
	h.goal("tokens_served_while_down", "PostgreSQL down: /token keeps answering for connections the replica has seen (200 with a token)",
		len(during) > 0 && served == len(during), "%d of %d /token calls to replica A during the outage answered 200 (%s)", served, len(during), codes(during))
	h.goal("proxy_works_while_down", "PostgreSQL down: proxied calls for connections the replica has seen go through (200)",
		len(proxyDuring) > 0 && okCount(proxyDuring) == len(proxyDuring), "%d of %d proxied calls through replica A during the outage answered 200 (%s)",
		okCount(proxyDuring), len(proxyDuring), codes(proxyDuring))
}

// replicaKilledRun (issue 28, point 4): two replicas on PostgreSQL refresh in a
// provider's grace rotation. Replica A is killed (SIGKILL) while refreshing: B
// sees its heartbeat stop and ends its leases. Then B is killed and a new replica
// starts at once: it ends B's leases once it has settled. Goal: the dead
// replicas' leased connections are refreshed again within seconds, not a lease
// later, and nothing is lost.
func replicaKilledRun(h *faultRun) {
	if pgBin() == "" {
		if inCI() {
			h.fatalf("CI=true, but no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
		}
		h.skipf("needs PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
	}
	pg := h.startPostgres()
	in := h.newInstall(installOpts{
		database: pg.dsn,
		fake:     getresponsetest.Options{Rotation: getresponsetest.RotationGrace, RotationGrace: graceRotation, ExpiresIn: faultTokenLife},
		latency:  [2]time.Duration{300 * time.Millisecond, 700 * time.Millisecond},
		settings: refreshSettings(),
	})
	a := in.serve()
	bAddr := freeLoopback(h)
	b := in.serve("GRCONNECT_ADDR=" + bAddr)
	if err := in.connect(h.form.killConns, 8); err != nil {
		h.fatalf("connect %d customers: %v", h.form.killConns, err)
	}
	time.Sleep(faultTokenLife - faultMargin + 3*time.Second)
	const limit = 70 * time.Second
	kill := func(p *grProc) killRecord {
		// Killed while it holds leases: refreshes of its own in flight.
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if ids, _ := in.leasedBy(p.pid()); len(ids) >= 2 {
				break
			}
		}
		k := killRecord{pid: p.pid()}
		k.before, k.after = p.kill()
		var err error
		if k.leased, err = in.leasedBy(k.pid); err != nil {
			h.errorf("read leases after the kill: %v", err)
		}
		return k
	}
	// waits returns, for each connection the dead replica leased, how long after
	// the kill its next refresh call came (waiting up to limit for them all).
	waits := func(k killRecord) []time.Duration {
		deadline := time.Now().Add(limit)
		for {
			issued, err := fakeRefreshTokens(in.fake)
			if err != nil {
				h.fatalf("fake snapshot: %v", err)
			}
			starts := in.refreshStarts(in.rec.snapshot(), issued)
			var ws []time.Duration
			all := true
			for _, id := range k.leased {
				w := waitAfter(starts[id], k)
				ws = append(ws, w)
				if !slices.ContainsFunc(starts[id], func(s time.Time) bool { return s.After(k.after) }) {
					all = false
				}
			}
			if all || time.Now().After(deadline) {
				return ws
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	k1 := kill(a)
	seen := waits(k1)
	k2 := kill(b)
	c := in.serve() // a replica starting at once, on A's address
	started := waits(k2)
	pending := in.waitRefreshed(time.Now(), 2*time.Minute, false)
	if len(pending) > 0 {
		h.errorf("%d connections neither refreshed after the kills nor marked needs_reconnect: %s", len(pending), brief(pending))
	}
	ended := c.log.count("a replica stopped beating")
	ls := in.countLosses(c)
	h.figure("%d connections, 2 replicas, grace rotation; A killed holding %d leases: refreshed again by B after %s; B killed holding %d leases, a new replica started at once: refreshed again after %s (the new replica logged %d ended replicas); lost %d",
		ls.total, len(k1.leased), durations(seen), len(k2.leased), durations(started), ended, len(ls.lost))
	if len(k1.leased) == 0 || len(k2.leased) == 0 {
		h.errorf("a killed replica held no lease (%d, %d): the scenario tested less than it should", len(k1.leased), len(k2.leased))
	}
	worst := func(ws []time.Duration) time.Duration { return slices.Max(append(ws, 0)) }
	h.goal("seen_gone_seconds", "a replica killed mid-refresh: another replica that sees its heartbeat stop refreshes its leased connections within 20 s (not after the 60 s lease)",
		len(seen) > 0 && worst(seen) <= 20*time.Second, "%d leased connections refreshed again after %s", len(k1.leased), durations(seen))
	h.goal("starting_replica_seconds", "the only replica killed and a new one started: it refreshes the dead one's leased connections within 25 s of the kill (not after the 60 s lease)",
		len(started) > 0 && worst(started) <= 25*time.Second, "%d leased connections refreshed again after %s", len(k2.leased), durations(started))
	h.goal("no_loss", "two replicas killed in a provider's grace rotation: no connection lost",
		len(ls.lost) == 0, "%d of %d lost: %s", len(ls.lost), ls.total, brief(ls.lost))
}

// refreshRateRun (issue 28, point 2): GRCONNECT_REFRESH_RATE=10 with every
// connection due all the time and heavy /token traffic on them (each request for
// a token inside the margin nudges a background refresh). Goal: at most 10
// refresh calls reach GetResponse in any one second, and every /token answers 200.
func refreshRateRun(h *faultRun) {
	in := h.newInstall(installOpts{fake: getresponsetest.Options{Rotation: getresponsetest.RotationStrict, ExpiresIn: faultTokenLife}})
	p := in.serve("GRCONNECT_REFRESH_RATE=10", "GRCONNECT_REFRESH_CONCURRENCY=8", "GRCONNECT_REFRESH_INTERVAL=200ms",
		"GRCONNECT_REFRESH_MARGIN="+faultMargin.String())
	if err := in.connect(h.form.rateConns, 16); err != nil {
		h.fatalf("connect %d customers: %v", h.form.rateConns, err)
	}
	ids := in.connectionIDs()
	time.Sleep(faultTokenLife - faultMargin + time.Second) // every connection due
	before := in.rec.count()
	start := time.Now()
	res := h.loadTokens(in, ids, h.form.rateLoad, h.form.rateFor)
	end := time.Now()
	calls := callsBetween(in.rec.snapshot()[before:], start, end)
	most, at := mostInWindow(calls, time.Second)
	if err := p.stop(); err != nil {
		h.logf("stop: %v", err)
	}
	sent := len(res.latencies)
	h.figure("%d connections all due, GRCONNECT_REFRESH_RATE=10; %d /token requests in %s (%.0f/s), answers %s, p99 %s; %d refresh calls meanwhile (%.1f/s), at most %d in any one second (from %s into the load)",
		len(ids), sent, res.elapsed.Round(100*time.Millisecond), float64(sent)/res.elapsed.Seconds(), codesText(res.codes), res.quantile(0.99).Round(100*time.Microsecond),
		len(calls), float64(len(calls))/end.Sub(start).Seconds(), most, at.Sub(start).Round(100*time.Millisecond))
	h.goal("at_most_rate", fmt.Sprintf("GRCONNECT_REFRESH_RATE=10 with %d /token requests a second on %d due connections: at most 10 refresh calls in any one second (at the fake)", h.form.rateLoad, len(ids)),
		len(calls) > 0 && most <= 10, "%d refresh calls over %s, at most %d in one second", len(calls), end.Sub(start).Round(100*time.Millisecond), most)
	h.goal("tokens_served", "meanwhile every /token answers 200", sent > 0 && res.codes[http.StatusOK] == sent,
		"%d requests, answers %s", sent, codesText(res.codes))
}

// describe says, for a few connections, what the database holds of their state
// (for a harness failure's message).
func (in *install) describe(ids []string, since time.Time) string {
	cs, err := in.dbConnections()
	if err != nil {
		return brief(ids) + " (" + err.Error() + ")"
	}
	want := setOf(ids)
	var parts []string
	for _, c := range cs {
		if !want[c.ID] || len(parts) == 5 {
			continue
		}
		at := func(t *time.Time) string {
			if t == nil {
				return "never"
			}
			return t.Sub(since).Round(100 * time.Millisecond).String()
		}
		parts = append(parts, fmt.Sprintf("%s %s, lease %q until %s, last refresh %s, expires %s (times from the restart)",
			c.ID, c.Status, c.LeaseOwner, at(c.LeaseUntil), at(c.LastRefreshAt), at(c.ExpiresAt)))
	}
	return fmt.Sprintf("%d: %s", len(ids), strings.Join(parts, "; "))
}

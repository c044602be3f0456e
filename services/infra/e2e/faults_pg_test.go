package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// postgresSkip says when the PostgreSQL scenario does not run: it runs in the long
// form, with GRCONNECT_FAULTS_PG=1 (.ci/run's first pass, beside the other
// scenarios), and in CI's PostgreSQL pass (GRCONNECT_TEST_DATABASE) unless
// GRCONNECT_FAULTS_PG=0.
func postgresSkip(form faultForm) func() string {
	return func() string {
		switch pg := os.Getenv(faultsEnvPG); {
		case form.name == "long" || pg == "1":
			return ""
		case pg == "0":
			return faultsEnvPG + "=0"
		case modelstest.Postgres():
			return ""
		}
		return "PostgreSQL scenario: runs with " + faultsEnvPG + "=1, in the long form, or when " + modelstest.EnvDatabase + " is set"
	}
}

// pgBin returns the newest PostgreSQL server binary directory, or "".
func pgBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "pg_ctl")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

// pgCluster is a throwaway PostgreSQL cluster of the test's own, on a free
// loopback port (never CI's shared one).
type pgCluster struct {
	h    *faultRun
	bin  string
	dir  string
	port string
	dsn  string
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// as runs a PostgreSQL tool as the postgres user (through su when root).
func (c *pgCluster) as(tool string, args ...string) error {
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		line := shellQuote(filepath.Join(c.bin, tool))
		for _, a := range args {
			line += " " + shellQuote(a)
		}
		cmd = exec.Command("su", "postgres", "-s", "/bin/sh", "-c", line)
	} else {
		cmd = exec.Command(filepath.Join(c.bin, tool), args...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, tail(string(out), 1500))
	}
	return nil
}

// startPostgres makes and starts a cluster, removed when the scenario ends.
func (h *faultRun) startPostgres() *pgCluster {
	c := &pgCluster{h: h, bin: pgBin()}
	dir, err := os.MkdirTemp("", "grconnect-faults-pg-")
	if err != nil {
		h.fatalf("%v", err)
	}
	c.dir = dir
	h.cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			h.skipf("running as root needs a postgres user for initdb: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			h.fatalf("%v", err)
		}
	}
	_, c.port, _ = strings.Cut(freeLoopback(h), ":")
	if err := c.as("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust", "--locale=C.UTF-8", "-E", "UTF8"); err != nil {
		h.fatalf("%v", err)
	}
	if err := c.start(); err != nil {
		h.fatalf("%v", err)
	}
	h.cleanup(func() { c.as("pg_ctl", "-D", filepath.Join(dir, "data"), "-m", "immediate", "stop") })
	c.dsn = "postgres://postgres@127.0.0.1:" + c.port + "/postgres?sslmode=disable"
	return c
}

// start starts the cluster and waits until it accepts connections. Commits are
// synchronous (an immediate stop loses nothing committed); fsync is off, as
// nothing here survives a machine crash anyway.
func (c *pgCluster) start() error {
	opts := fmt.Sprintf("-p %s -k %s -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off -c full_page_writes=off", c.port, c.dir)
	return c.as("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-l", filepath.Join(c.dir, "log"), "-w", "-o", opts, "start")
}

// stopImmediate stops the cluster at once, as a crash or a failover would: SIGQUIT
// to the postmaster (pg_ctl -m immediate, without pg_ctl's start-up delay), then
// waits until it is gone.
func (c *pgCluster) stopImmediate() error {
	b, err := os.ReadFile(filepath.Join(c.dir, "data", "postmaster.pid"))
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return fmt.Errorf("postmaster.pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGQUIT); err != nil {
		return c.as("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "stop")
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
	}
	return fmt.Errorf("postmaster %d still running 30 s after SIGQUIT", pid)
}

// postgresStoppedRun refreshes continuously in strict rotation on form.pgReplicas
// replicas sharing a PostgreSQL of the test's own, stops PostgreSQL (immediate)
// while refreshes are in flight, for form.pgStop, starts it again, and counts the connections lost. Goal: none.
func postgresStoppedRun(h *faultRun) {
	if pgBin() == "" {
		if inCI() {
			h.fatalf("CI=true, but no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
		}
		h.skipf("needs PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
	}
	pg := h.startPostgres()
	in := h.newInstall(installOpts{
		database: pg.dsn,
		fake:     getresponsetest.Options{Rotation: getresponsetest.RotationStrict, ExpiresIn: faultTokenLife},
		latency:  [2]time.Duration{50 * time.Millisecond, 150 * time.Millisecond},
		settings: refreshSettings(),
	})
	procs := []*grProc{in.serve()}
	for range h.form.pgReplicas - 1 {
		procs = append(procs, in.serve("GRCONNECT_ADDR="+freeLoopback(h)))
	}
	if err := in.connect(h.form.pgConns, 8); err != nil {
		h.fatalf("connect %d customers: %v", h.form.pgConns, err)
	}
	time.Sleep(faultTokenLife - faultMargin + 3*time.Second) // refreshing in its stride
	readyz := startPoller(250*time.Millisecond, func() (int, bool) { return readyzOf(procs[0].url) })
	callsBefore := in.rec.count()
	if !in.rec.waitInFlight(2, 15*time.Second) {
		h.logf("no two refreshes in flight at once within 15 s; stopping PostgreSQL anyway")
	}
	stopped := time.Now()
	atStop := in.rec.inFlightNow()
	if err := pg.stopImmediate(); err != nil {
		h.fatalf("%v", err)
	}
	time.Sleep(h.form.pgStop)
	if err := pg.start(); err != nil {
		h.fatalf("%v", err)
	}
	restarted := time.Now()
	h.logf("PostgreSQL stopped for %s", restarted.Sub(stopped).Round(100*time.Millisecond))
	var ready time.Duration = -1
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rs := readyz.results()
		if last := rs[len(rs)-1]; last.at.After(restarted) && last.ok {
			ready = last.at.Sub(restarted)
			break
		}
	}
	probes := readyz.end()
	survived := 0
	for i, p := range procs {
		if p.exited() {
			h.logf("%s died during the outage: %v\n%s", p.name, p.err, tail(p.log.String(), 1500))
			extra := []string{}
			if i > 0 {
				extra = append(extra, "GRCONNECT_ADDR="+strings.TrimPrefix(p.url, "http://"))
			}
			procs[i] = in.serve(extra...)
			continue
		}
		survived++
	}

	pending := in.waitSettled(restarted, 2*time.Minute)
	if len(pending) > 0 {
		h.errorf("%d connections neither refreshed after PostgreSQL came back nor marked needs_reconnect: %s", len(pending), brief(pending))
	}
	for _, p := range procs[1:] {
		p.stop()
	}
	ls := in.countLosses(procs[0])
	h.figure("%d connections on %d replica(s), PostgreSQL stopped %s with %d refreshes in flight; refresh calls during the outage %d; /readyz during it: %s; ready again %s after the restart; replicas that survived: %d of %d; lost %d (needs_reconnect %d, dead stored token %d)",
		ls.total, len(procs), restarted.Sub(stopped).Round(100*time.Millisecond), atStop, countBetween(in.rec.snapshot()[callsBefore:], stopped, restarted),
		codes(between(probes, stopped.Add(time.Second), restarted)), readyAgainText(ready), survived, len(procs), len(ls.lost), len(ls.needsReconnect), len(ls.deadToken))
	h.goal("no_loss", fmt.Sprintf("PostgreSQL stopped %s while refreshing (strict rotation): no connection lost", h.form.pgStop),
		len(ls.lost) == 0, "%d of %d lost (needs_reconnect %d, dead stored token %d): %s",
		len(ls.lost), ls.total, len(ls.needsReconnect), len(ls.deadToken), brief(ls.lost))
}

// countBetween counts the refresh calls that started in [from, to).
func countBetween(calls []refreshCall, from, to time.Time) int {
	n := 0
	for _, c := range calls {
		if !c.start.Before(from) && c.start.Before(to) {
			n++
		}
	}
	return n
}

package e2e

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
	"github.com/grconnect/grconnect/services/infra/config"
	"github.com/grconnect/grconnect/services/infra/secrets"
	"github.com/grconnect/grconnect/services/tokens"
)

// millionTimedMigration is the migration BenchmarkMillion times with grconnect
// migrate on the seeded install: this release's newest.
const millionTimedMigration = 19

// BenchmarkMillion measures one grconnect install holding 1,000,000 connections,
// on SQLite, or on PostgreSQL when GRCONNECT_TEST_DATABASE names a server:
//
//	go test -run '^$' -bench Million -benchtime 1x -timeout 60m ./services/infra/e2e/
//	GRCONNECT_TEST_DATABASE=postgres://postgres@127.0.0.1:5432/postgres go test -run '^$' -bench Million -benchtime 1x -timeout 60m ./services/infra/e2e/
//
// It copies the seeded install (see million_seed_test.go), times grconnect migrate
// applying millionTimedMigration, starts a real grconnect serve on it and times
// the dashboard's pages over HTTP as a signed-in operator (p50 of 25 requests
// each), /metrics, and its memory while four clients load it; then grconnect
// backup and verify; then the refresher in this process on the same database, on
// a clock of its own: the due query's cost, 90 seconds at the default settings
// while connections enter the refresh margin at the rate of a million daily
// tokens, and its capacity with the rate lifted. It prints a table of figures
// against their goals.
func BenchmarkMillion(b *testing.B) {
	in := millionCopy(b, millionTimedMigration)
	r := &millionReport{}
	env := map[string]string{"GRCONNECT_DATABASE": in.dsn, "GRCONNECT_SECRET_KEY": base64.StdEncoding.EncodeToString(millionKey)}
	bin := shippedBinary(b)

	took, out := timeCommand(b, bin, env, "migrate")
	r.add("grconnect migrate (migration "+strconv.Itoa(millionTimedMigration)+")", took, 0, lastLine(out))

	fake := getresponsetest.NewServer(getresponsetest.Options{ExpiresIn: 24 * time.Hour})
	b.Cleanup(fake.Close)
	pointAppsAt(b, in, fake)

	srv := startMillionServer(b, bin, env, fake)
	r.add("exec → /readyz at 1M", srv.ready, 0, "")
	op := newAgent(b)
	if status, body, _ := op.submit(srv.url+"/login", srv.url+"/login", url.Values{"email": {millionEmail}, "password": {millionPassword}}); status != http.StatusSeeOther {
		b.Fatalf("sign-in: %d\n%s", status, tail(body, 2000))
	}
	pages := millionPages(in.seed)
	for _, p := range pages {
		p50, p95 := timePage(b, op, srv.url+p.path, 25)
		r.add(p.name, p50, p.goal, fmt.Sprintf("p95 %s", ms(p95)))
	}
	// An app's outage: the middle app (9.9 %) turns unhealthy, which pauses its
	// live connections; the lists split them off the active ones.
	setAppHealth(b, in, in.seed.Apps[1], models.AppRefused)
	for _, p := range millionOutagePages() {
		p50, p95 := timePage(b, op, srv.url+p.path, 25)
		r.add(p.name, p50, p.goal, fmt.Sprintf("p95 %s", ms(p95)))
	}
	setAppHealth(b, in, in.seed.Apps[1], models.AppHealthy)
	srv.waitMetrics(b, op)
	p50, p95 := timePage(b, op, srv.url+"/metrics", 200)
	r.add("/metrics", p50, 2*time.Millisecond, "p95 "+ms(p95))
	peak, served := srv.load(b, op, pages, 15*time.Second)
	r.addText("RSS under load (4 clients, 15 s)", fmt.Sprintf("%.0f MB", float64(peak)/1e6), peak <= 150e6, fmt.Sprintf("≤ 150 MB; %d pages served", served))
	srv.stop(b)

	if !in.pg {
		backup := filepath.Join(b.TempDir(), "backup.db")
		took, _ := timeCommand(b, bin, env, "backup", "--to", backup)
		st, _ := os.Stat(backup)
		r.add("grconnect backup", took, 30*time.Second, services.FormatBytes(st.Size()))
		took, out := timeCommand(b, bin, env, "verify", "--from", backup)
		r.add("grconnect verify --from the backup", took, 60*time.Second, lastLine(out))
	} else {
		took, out := timeCommand(b, bin, env, "verify")
		r.add("grconnect verify", took, 60*time.Second, lastLine(out))
	}

	millionRefresher(b, in, fake, r)
	r.print(b)
}

// millionPage is one dashboard page the benchmark times, with its goal.
type millionPage struct {
	name, path string
	goal       time.Duration
}

func millionPages(seed *millionSeed) []millionPage {
	const list, search = 20 * time.Millisecond, 50 * time.Millisecond
	return []millionPage{
		{"list: first page (live, who must act first)", "/connections", list},
		{"list: by expiry", "/connections?sort=expires", list},
		{"list: by e-mail", "/connections?sort=email", list},
		{"list: by customer ref, last first", "/connections?sort=-customer", list},
		{"list: needs reconnect by e-mail", "/connections?status=needs_reconnect&sort=email", list},
		{"list: all", "/connections?status=all", list},
		{"list: active", "/connections?status=active", list},
		{"list: refresh failing", "/connections?status=refresh_failing", list},
		{"list: needs reconnect", "/connections?status=needs_reconnect", list},
		{"list: disconnected", "/connections?status=disconnected", list},
		{"list: last page (all)", "/connections?status=all&last=1", list},
		{"list: app (90 %)", "/connections?app=" + seed.Apps[0], list},
		{"list: app (0.1 %)", "/connections?app=" + seed.Apps[2], list},
		{"list: app (0.1 %), needs reconnect", "/connections?status=needs_reconnect&app=" + seed.Apps[2], list},
		{"list: paused (every app healthy)", "/connections?status=paused", list},
		{"search: fischer (2.5 % match)", "/connections?q=fischer", search},
		{"search: Novak (mixed case)", "/connections?q=Novak&status=all", search},
		{"search: fischer-bikes (mid-string)", "/connections?q=fischer-bikes", search},
		{"search: 0042137 (a few)", "/connections?q=0042137&status=all", search},
		{"search: a MAX domain", "/connections?q=mail.tatra-tours&status=all", search},
		{"search: nothing matches", "/connections?q=zzqx9", search},
		{"search: 2 characters", "/connections?q=ko", search},
		{"overview", "/", 50 * time.Millisecond},
	}
}

// millionOutagePages are timed while the app of 9.9 % is unhealthy.
func millionOutagePages() []millionPage {
	const list = 20 * time.Millisecond
	return []millionPage{
		{"outage of the 9.9 % app: first page (who must act first)", "/connections", list},
		{"outage of the 9.9 % app: list paused", "/connections?status=paused", list},
		{"outage of the 9.9 % app: list active", "/connections?status=active", list},
		{"outage of the 9.9 % app: overview", "/", 50 * time.Millisecond},
	}
}

// setAppHealth writes an app's health as the token engine would.
func setAppHealth(b *testing.B, in *millionInstall, appID string, h models.AppHealth) {
	b.Helper()
	store := openStore(b, in.dsn)
	if err := store.DB().Exec("UPDATE apps SET health = ? WHERE id = ?", h, appID).Error; err != nil {
		b.Fatal(err)
	}
	store.Close()
}

// timeCommand runs the binary with exactly env (plus PATH) and returns how long it took.
func timeCommand(b *testing.B, bin string, env map[string]string, args ...string) (time.Duration, string) {
	b.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		b.Fatalf("grconnect %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 3000))
	}
	return took, string(out)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// pointAppsAt points the seeded apps at the fake and registers their clients there.
func pointAppsAt(b *testing.B, in *millionInstall, fake *getresponsetest.Server) {
	b.Helper()
	store := openStore(b, in.dsn)
	for n, id := range in.seed.Apps {
		if err := store.DB().Exec("UPDATE apps SET auth_url = ?, api_url = ? WHERE id = ?", fake.AuthURL(), fake.APIURL(), id).Error; err != nil {
			b.Fatal(err)
		}
		fake.AddClient(fmt.Sprintf("client-%d", n), fmt.Sprintf("secret-%d", n), "http://grconnect.test/oauth/callback")
	}
}

func openStore(b *testing.B, dsn string) *models.Store {
	b.Helper()
	store, err := models.Open(dsn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	return store
}

// millionServer is the grconnect serve process under test.
type millionServer struct {
	url   string
	cmd   *exec.Cmd
	log   *syncLog
	ready time.Duration
	done  chan struct{}
}

func startMillionServer(b *testing.B, bin string, env map[string]string, fake *getresponsetest.Server) *millionServer {
	b.Helper()
	addr := freeAddr(b)
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GRCONNECT_ADDR=" + addr, "GRCONNECT_LOG_LEVEL=warn",
		"GRCONNECT_GETRESPONSE_AUTH_URL=" + fake.AuthURL(), "GRCONNECT_GETRESPONSE_API_URL=" + fake.APIURL()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	s := &millionServer{url: "http://" + addr, cmd: cmd, log: &syncLog{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { cmd.Wait(); close(s.done) }()
	b.Cleanup(func() { s.stop(b) })
	for {
		res, err := http.Get(s.url + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				s.ready = time.Since(start)
				return s
			}
		}
		select {
		case <-s.done:
			b.Fatalf("grconnect serve exited:\n%s", tail(s.log.String(), 3000))
		case <-time.After(5 * time.Millisecond):
		}
		if time.Since(start) > 2*time.Minute {
			b.Fatalf("grconnect serve not ready:\n%s", tail(s.log.String(), 3000))
		}
	}
}

func (s *millionServer) stop(b *testing.B) {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	if strings.Contains(s.log.String(), "level=ERROR") {
		b.Logf("grconnect serve logged errors:\n%s", tail(s.log.String(), 3000))
	}
}

// waitMetrics waits for the first background read of the database figures.
func (s *millionServer) waitMetrics(b *testing.B, op *agent) {
	b.Helper()
	for start := time.Now(); time.Since(start) < 2*time.Minute; time.Sleep(100 * time.Millisecond) {
		if _, body, _ := op.do(http.MethodGet, s.url+"/metrics", nil); strings.Contains(body, "grconnect_connections{") {
			return
		}
	}
	b.Fatal("/metrics never showed the connection figures")
}

// rss returns the process's resident set size in bytes.
func (s *millionServer) rss(b *testing.B) int64 {
	return 1024 * statusKB(b, s.cmd.Process.Pid, "VmRSS")
}

// load has four clients fetch the pages round-robin for d and returns the peak
// RSS seen (sampled every 20 ms) and how many pages were served.
func (s *millionServer) load(b *testing.B, op *agent, pages []millionPage, d time.Duration) (peak int64, served int64) {
	b.Helper()
	stop := time.Now().Add(d)
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; time.Now().Before(stop); i++ {
				p := pages[i%len(pages)].path
				if i%5 == 0 {
					p = "/metrics"
				}
				res, err := op.client.Get(s.url + p)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Errorf("%s = %d", p, res.StatusCode)
					return
				}
				n.Add(1)
			}
		})
	}
	for time.Now().Before(stop) {
		peak = max(peak, s.rss(b))
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	return max(peak, s.rss(b)), n.Load()
}

// timePage fetches u twice to warm up, then n times, and returns the median and
// 95th percentile.
func timePage(b *testing.B, op *agent, u string, n int) (p50, p95 time.Duration) {
	b.Helper()
	var took []time.Duration
	for i := range n + 2 {
		start := time.Now()
		res, err := op.client.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		d := time.Since(start)
		if res.StatusCode != http.StatusOK {
			b.Fatalf("%s = %d\n%s", u, res.StatusCode, tail(string(body), 2000))
		}
		if i >= 2 {
			took = append(took, d)
		}
	}
	slices.Sort(took)
	return took[len(took)/2], took[len(took)*95/100]
}

// millionRefresher measures the background refresher on the install, in this
// process, on a clock that starts where the seed's tokens begin to enter the
// refresh margin.
func millionRefresher(b *testing.B, in *millionInstall, fake *getresponsetest.Server, r *millionReport) {
	b.Helper()
	ctx := context.Background()
	store := openStore(b, in.dsn)
	defaults, err := config.Bind(flag.NewFlagSet("defaults", flag.ContinueOnError), func(string) string { return "" }).Load()
	if err != nil {
		b.Fatal(err)
	}
	policy := tokens.DuePolicy{Margin: defaults.RefreshMargin, Keepalive: defaults.Keepalive}
	var clockMu sync.Mutex
	var base time.Time
	var since time.Time
	setClock := func(t time.Time) { clockMu.Lock(); base, since = t, time.Now(); clockMu.Unlock() }
	now := func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		return base.Add(time.Since(since)).UTC().Truncate(time.Microsecond)
	}
	enter := in.seed.firstExpiry().Add(-policy.Margin) // the first token enters the margin
	setClock(enter.Add(-time.Second))

	// The due query at 1M: nothing due, then a day's backlog of 20 minutes.
	for _, c := range []struct {
		name string
		at   time.Time
	}{{"nothing due", enter.Add(-time.Second)}, {"20 minutes due (~14,000)", enter.Add(20 * time.Minute)}} {
		var took []time.Duration
		for range 21 {
			start := time.Now()
			if _, err := store.DueConnections(ctx, policy.Query(c.at, 50)); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		r.add("refresher: due query, "+c.name, took[10], 0, "one pick of 50, p50 of 21")
	}

	// Real tokens for the connections the two runs below refresh: the first by expiry.
	const capacity = 20_000
	sealRealTokens(b, store, in, fake, 24_000)
	box := in.box
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	gr := getresponse.New(&http.Client{Transport: transport, Timeout: 10 * time.Second})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := tokens.NewTokens(store, box, gr, policy, "http://grconnect.test/oauth/callback", quiet)
	engine.Now = now

	// At the defaults: tokens keep entering the margin as a million daily ones do
	// (11.6 a second), after a backlog of a minute's worth (694) built up while the
	// refresher was away. Working the backlog off shows the rate the default
	// allows with the due query running at a million rows; the backlog at the end,
	// that it keeps up.
	setClock(enter.Add(time.Minute))
	before := fake.Count(getresponsetest.EndpointTokenRefresh)
	engine.SetRefreshRate(defaults.RefreshRate)
	refresher := tokens.NewRefresher(engine, store, tokens.RefresherConfig{
		Concurrency: defaults.RefreshConcurrency, Interval: defaults.RefreshInterval,
	}, quiet)
	const sustain, backlogPhase = 120 * time.Second, 30 * time.Second
	rctx, cancel := context.WithTimeout(ctx, sustain)
	start := time.Now()
	startDue := dueCount(b, store, policy, now())
	var inBacklog int
	var watch sync.WaitGroup
	watch.Go(func() {
		select {
		case <-time.After(backlogPhase):
			inBacklog = fake.Count(getresponsetest.EndpointTokenRefresh) - before
		case <-rctx.Done():
		}
	})
	refresher.Run(rctx)
	cancel()
	watch.Wait()
	elapsed := time.Since(start)
	done := fake.Count(getresponsetest.EndpointTokenRefresh) - before
	entered := int(now().Sub(enter) / expirySpacing)
	left := dueCount(b, store, policy, now())
	perSecond := float64(inBacklog) / backlogPhase.Seconds()
	r.addText(fmt.Sprintf("refresher: defaults (%g/s, %d workers, every %s), backlog", defaults.RefreshRate, defaults.RefreshConcurrency, defaults.RefreshInterval),
		fmt.Sprintf("%.1f/s", perSecond), perSecond >= 12,
		fmt.Sprintf("≥ 12/s; %d refreshed in the first %s, %d due at the start", inBacklog, backlogPhase, startDue))
	passWorth := int64(12 * defaults.RefreshInterval.Seconds() * 2)
	r.addText("refresher: defaults, due at the end", strconv.FormatInt(left, 10), left <= passWorth,
		fmt.Sprintf("≤ %d (two passes' worth); %d due in all over %s, %d refreshed: every token refreshed well inside its %s margin",
			passWorth, entered, elapsed.Round(time.Second), done, policy.Margin))

	// Capacity: 20,000 due at once, the rate lifted.
	setClock(now().Add(time.Duration(capacity) * expirySpacing))
	due := dueCount(b, store, policy, now())
	before = fake.Count(getresponsetest.EndpointTokenRefresh)
	engine.SetRefreshLimiter(rate.NewLimiter(rate.Inf, 1))
	refresher = tokens.NewRefresher(engine, store, tokens.RefresherConfig{Concurrency: 32, Batch: 1000}, quiet)
	start = time.Now()
	for {
		n, err := refresher.RunOnce(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	elapsed = time.Since(start)
	done = fake.Count(getresponsetest.EndpointTokenRefresh) - before
	perSecond = float64(done) / elapsed.Seconds()
	r.addText("refresher: capacity, rate lifted (32 workers)", fmt.Sprintf("%.0f/s", perSecond), perSecond >= 1000,
		fmt.Sprintf("≥ 1,000/s; %d due, %d refreshed in %s", due, done, elapsed.Round(time.Millisecond)))
	if left := dueCount(b, store, policy, now()); left != 0 {
		b.Errorf("%d connections still due after the capacity run", left)
	}
}

// dueCount counts the connections due at now (active ones inside the margin,
// failing ones whose backoff ended).
func dueCount(b *testing.B, store *models.Store, policy tokens.DuePolicy, now time.Time) int64 {
	var active, failing int64
	err := store.DB().Raw(`SELECT COUNT(*) FROM connections WHERE status = ? AND expires_at < ?`, models.StatusActive, now.Add(policy.Margin)).Scan(&active).Error
	if err == nil {
		err = store.DB().Raw(`SELECT COUNT(*) FROM connections WHERE status = ? AND next_attempt_at <= ?`, models.StatusRefreshFailing, now).Scan(&failing).Error
	}
	if err != nil {
		b.Error(err)
	}
	return active + failing
}

// sealRealTokens gives the first n live connections by expiry tokens the fake
// issued, each for an account of its own there.
func sealRealTokens(b *testing.B, store *models.Store, in *millionInstall, fake *getresponsetest.Server, n int) {
	b.Helper()
	start := time.Now()
	var rows []struct{ ID, AppID, AccountID, AccountEmail string }
	if err := store.DB().Raw("SELECT id, app_id, account_id, account_email FROM connections WHERE status IN (?, ?) ORDER BY expires_at, id LIMIT ?",
		models.StatusActive, models.StatusRefreshFailing, n).Scan(&rows).Error; err != nil {
		b.Fatal(err)
	}
	client := map[string]string{}
	for i, id := range in.seed.Apps {
		client[id] = fmt.Sprintf("client-%d", i)
	}
	tx := store.DB().Begin()
	for _, c := range rows {
		account := fake.AddAccount(getresponsetest.Account{AccountID: c.AccountID, Email: c.AccountEmail})
		access, refresh, err := fake.IssueTokens(client[c.AppID], account)
		if err != nil {
			b.Fatal(err)
		}
		a, _ := in.box.Seal(access, secrets.AAD("connection", c.ID, "access_token"))
		r, _ := in.box.Seal(refresh, secrets.AAD("connection", c.ID, "refresh_token"))
		if err := tx.Exec("UPDATE connections SET access_token_enc = ?, refresh_token_enc = ? WHERE id = ?", a, r, c.ID).Error; err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit().Error; err != nil {
		b.Fatal(err)
	}
	b.Logf("gave %d connections real tokens in %v", len(rows), time.Since(start).Round(time.Millisecond))
}

// millionReport collects the figures and prints them against their goals.
type millionReport struct {
	rows [][4]string
}

func ms(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < 10*time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// add records a time against goal (0: no goal).
func (r *millionReport) add(name string, d, goal time.Duration, note string) {
	defer r.show()
	verdict := ""
	if goal > 0 {
		verdict = "ok"
		if d > goal {
			verdict = "MISS"
		}
		note = strings.TrimSpace("≤ " + ms(goal) + "; " + note)
		note = strings.TrimSuffix(note, ";")
	}
	r.rows = append(r.rows, [4]string{name, ms(d), verdict, note})
}

// show prints the figure just added at once (a run takes minutes).
func (r *millionReport) show() {
	row := r.rows[len(r.rows)-1]
	fmt.Printf("  %-52s %10s  %-4s  %s\n", row[0], row[1], row[2], row[3])
}

func (r *millionReport) addText(name, value string, ok bool, note string) {
	defer r.show()
	verdict := "ok"
	if !ok {
		verdict = "MISS"
	}
	r.rows = append(r.rows, [4]string{name, value, verdict, note})
}

func (r *millionReport) print(b *testing.B) {
	var sb strings.Builder
	engine := "SQLite"
	if os.Getenv("GRCONNECT_TEST_DATABASE") != "" {
		engine = "PostgreSQL"
	}
	fmt.Fprintf(&sb, "\n1,000,000 connections on %s:\n", engine)
	for _, row := range r.rows {
		fmt.Fprintf(&sb, "  %-52s %10s  %-4s  %s\n", row[0], row[1], row[2], row[3])
	}
	b.Log(sb.String())
}

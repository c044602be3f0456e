package e2e

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/models/modelstest"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// The million-connection install of BenchmarkMillion, seeded once and reused.
//
// Seeding writes rows straight into the tables (multi-row INSERTs in large
// transactions), not through the connect flow: 1,000,000 connections in three apps
// (90 %, 9.9 % and 0.1 % of them), 95.5 % active, 1 % needing a reconnect, 0.5 %
// failing, 3 % disconnected; a real sealed token pair each (verify opens them all)
// and two timeline events each. Access tokens expire spread over 24 hours starting
// 12 hours after the seed, so for the seed's first 11 hours nothing is due at the
// real clock; the refresher benchmark runs on its own clock from there.
//
// The seed is kept for millionSeedTTL: on SQLite as a file in the temp directory
// ($TMPDIR/grconnect-million-<version>/), on PostgreSQL as a template database
// (grconnect_million_<version>) on the server; each run works on a copy. It stops
// at the schema before the newest migration, which every run applies with
// grconnect migrate and times. Delete the directory (or DROP the template) to seed
// again.

const (
	millionRows    = 1_000_000
	millionSeedTTL = 11 * time.Hour
	// millionSeedVersion changes when the seed's shape changes.
	millionSeedVersion = "v2"
	// millionPassword signs the benchmark's operator in.
	millionEmail, millionPassword = "bench@example.com", "a long benchmark password 1"
)

// millionKey is the install's secret key.
var millionKey = func() []byte {
	k := make([]byte, secrets.KeySize)
	for i := range k {
		k[i] = byte(7*i + 1)
	}
	return k
}()

// millionSeed describes a seeded install.
type millionSeed struct {
	// SeededAt is the seed's clock: expiries start 12 hours after it.
	SeededAt time.Time
	// Versions are the migrations the seed holds.
	Versions []int
	// Apps are the three apps' IDs: the large, the middle and the tiny one.
	Apps [3]string
	// Took is how long seeding took.
	Took time.Duration
}

// millionFirstExpiry is when the seed's first access token expires.
func (m *millionSeed) firstExpiry() time.Time { return m.SeededAt.Add(12 * time.Hour) }

// expirySpacing is the time between two connections' expiries: a day over the rows.
const expirySpacing = 24 * time.Hour / millionRows

// millionInstall is one run's copy of the seed.
type millionInstall struct {
	seed *millionSeed
	dsn  string // the copy: a SQLite path or a postgres:// URL
	box  *secrets.Box
	pg   bool
}

// millionCopy returns a fresh copy of the seeded install (seeding it first when no
// fresh seed is kept), removed when the benchmark ends.
func millionCopy(b *testing.B, newest int) *millionInstall {
	b.Helper()
	box, err := secrets.New(millionKey)
	if err != nil {
		b.Fatal(err)
	}
	versions := millionVersions(b, newest)
	in := &millionInstall{box: box, pg: modelstest.Postgres()}
	if in.pg {
		in.seed, in.dsn = millionPostgres(b, box, newest, versions)
	} else {
		in.seed, in.dsn = millionSQLite(b, box, newest, versions)
	}
	return in
}

// millionVersions lists the migrations a seed holds: all but newest.
func millionVersions(b *testing.B, newest int) []int {
	b.Helper()
	store, err := models.Open(filepath.Join(b.TempDir(), "versions.db"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	if _, err := store.MigrateSkipping(context.Background(), newest); err != nil {
		b.Fatal(err)
	}
	return appliedVersions(b, store)
}

func appliedVersions(b *testing.B, store *models.Store) []int {
	b.Helper()
	var v []int
	if err := store.DB().Raw("SELECT version FROM schema_migrations ORDER BY version").Scan(&v).Error; err != nil {
		b.Fatal(err)
	}
	return v
}

// loadSeed reads a kept seed's description, nil when it is missing, stale or of
// another schema.
func loadSeed(path string, versions []int) *millionSeed {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var s millionSeed
	if json.Unmarshal(data, &s) != nil || time.Since(s.SeededAt) > millionSeedTTL || fmt.Sprint(s.Versions) != fmt.Sprint(versions) {
		return nil
	}
	return &s
}

func millionSQLite(b *testing.B, box *secrets.Box, newest int, versions []int) (*millionSeed, string) {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "grconnect-million-"+millionSeedVersion)
	kept, meta := filepath.Join(dir, "seed.db"), filepath.Join(dir, "seed.json")
	seed := loadSeed(meta, versions)
	if seed == nil {
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		seed = seedMillion(b, kept, box, newest)
		data, _ := json.Marshal(seed)
		if err := os.WriteFile(meta, data, 0o600); err != nil {
			b.Fatal(err)
		}
	} else {
		b.Logf("using the seed kept in %s (seeded %s ago; delete it to seed again)", dir, time.Since(seed.SeededAt).Round(time.Minute))
	}
	dst := filepath.Join(b.TempDir(), "grconnect.db")
	start := time.Now()
	if err := copyFile(kept, dst); err != nil {
		b.Fatal(err)
	}
	b.Logf("copied the seed in %v", time.Since(start).Round(time.Millisecond))
	dropStatistics(b, dst)
	return seed, dst
}

// dropStatistics removes the planner statistics a seed of an earlier version
// gathered: a real install has none.
func dropStatistics(b *testing.B, path string) {
	b.Helper()
	store := openStore(b, path)
	var n int64
	store.DB().Raw("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").Scan(&n)
	if n > 0 {
		if err := store.DB().Exec("DROP TABLE sqlite_stat1").Error; err != nil {
			b.Fatal(err)
		}
	}
	store.Close()
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func millionPostgres(b *testing.B, box *secrets.Box, newest int, versions []int) (*millionSeed, string) {
	b.Helper()
	admin := os.Getenv(modelstest.EnvDatabase)
	db, err := sql.Open("pgx", admin)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	template := "grconnect_million_" + millionSeedVersion
	var meta string
	_ = db.QueryRowContext(ctx, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", template).Scan(&meta)
	seed := (*millionSeed)(nil)
	if meta != "" {
		var s millionSeed
		if json.Unmarshal([]byte(meta), &s) == nil && time.Since(s.SeededAt) <= millionSeedTTL && fmt.Sprint(s.Versions) == fmt.Sprint(versions) {
			seed = &s
		}
	}
	dsnOf := func(name string) string {
		u, _ := url.Parse(admin)
		u.Path = "/" + name
		return u.String()
	}
	if seed == nil {
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+template+" WITH (FORCE)"); err != nil {
			b.Fatal(err)
		}
		// As the test databases are: ICU's en-US collation, so that byte-order
		// comparisons must be asked for.
		if _, err := db.ExecContext(ctx, "CREATE DATABASE "+template+" TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"); err != nil {
			b.Fatal(err)
		}
		seed = seedMillion(b, dsnOf(template), box, newest)
		data, _ := json.Marshal(seed)
		if _, err := db.ExecContext(ctx, "COMMENT ON DATABASE "+template+" IS "+quoteLiteral(string(data))); err != nil {
			b.Fatal(err)
		}
	} else {
		b.Logf("using the seed kept in database %s (seeded %s ago; drop it to seed again)", template, time.Since(seed.SeededAt).Round(time.Minute))
	}
	name := fmt.Sprintf("grc_million_%d", time.Now().UnixNano())
	start := time.Now()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE "+template); err != nil {
		b.Fatal(err)
	}
	b.Logf("copied the seed in %v", time.Since(start).Round(time.Millisecond))
	b.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return seed, dsnOf(name)
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Names the seed draws from, so that searches meet realistic repetition.
var (
	firstNames = []string{"Anna", "Jan", "Petra", "Hans", "Maria", "Tomasz", "Eva", "Lukas", "Sofia", "Marek",
		"Julia", "Piotr", "Lena", "Karel", "Olga", "Felix", "Mia", "Pavel", "Nora", "Jonas",
		"Ewa", "David", "Clara", "Adam", "Ida", "Viktor", "Hana", "Emil", "Zofia", "Oskar"}
	lastNames = []string{"Novak", "Fischer", "Kowalski", "Schmidt", "Dvořák", "Meyer", "Nowak", "Weber", "Svoboda", "Wagner",
		"Becker", "Horák", "Schulz", "Wiśniewski", "Hoffmann", "Černý", "Koch", "Lewandowski", "Richter", "Procházka",
		"Klein", "Wolf", "Zieliński", "Neumann", "Kučera", "Schwarz", "Kamiński", "Braun", "Veselý", "Zimmermann",
		"Hofmann", "Král", "Hartmann", "Szymański", "Lange", "Beneš", "Schmitt", "Woźniak", "Werner", "Fiala"}
	companies = []string{"fischer-bikes", "novak-print", "acme", "bluebird-media", "kowalski-trade", "alpine-outdoor",
		"harbour-foods", "nordwind", "praha-design", "silesia-steel", "vistula-books", "rhine-wines", "tatra-tours",
		"danube-logistics", "baltic-amber", "moravia-glass", "bavaria-brew", "carpathia-crafts", "elbe-electric", "odra-optics"}
	tlds = []string{"com", "de", "pl", "cz", "eu", "at"}
)

// seedConnection describes row i of the seed.
func seedConnection(i int, seededAt time.Time, apps [3]string) (c models.Connection) {
	// A permutation of the rows: expiry order is not insertion order.
	p := int((int64(i) * 7919) % millionRows)
	first, last := firstNames[i%len(firstNames)], lastNames[(i/len(firstNames))%len(lastNames)]
	company := companies[(i/7)%len(companies)] + "." + tlds[(i/3)%len(tlds)]
	c.ID = fmt.Sprintf("con_%012d", i)
	switch {
	case i%1000 == 999:
		c.AppID = apps[2]
	case i%10 == 1:
		c.AppID = apps[1]
	default:
		c.AppID = apps[0]
	}
	c.AccountID = strconv.FormatInt(int64(p)*104729+4_000_000, 36)
	c.AccountEmail = strings.ToLower(fmt.Sprintf("%s.%s%d@%s", first, last, i, company))
	c.AccountName = first + " " + last
	c.CompanyName = companies[(i/7)%len(companies)]
	c.CustomerRef = fmt.Sprintf("cust-%07d", i)
	if i%100 == 42 {
		c.MaxDomain = "mail." + company
	}
	exp := seededAt.Add(12*time.Hour + time.Duration(p)*expirySpacing)
	lastRefresh := seededAt.Add(-time.Minute - time.Duration(p)*(11*time.Hour/millionRows))
	c.ExpiresAt, c.LastRefreshAt = &exp, &lastRefresh
	c.ConnectedAt = seededAt.Add(-30 * 24 * time.Hour)
	c.CreatedAt, c.UpdatedAt = c.ConnectedAt, lastRefresh
	c.TokenVersion = 2
	// The state from a hash of the row: a share of every app, name and expiry (from
	// i itself it would follow the names and apps, which repeat with i).
	switch r := spread(i) % 200; {
	case r < 2:
		c.Status = models.StatusNeedsReconnect
		c.LastError = "GetResponse rejected the refresh token (invalid_grant)"
	case r == 2:
		c.Status, c.FailureCount = models.StatusRefreshFailing, 2
		next := exp.Add(-5 * time.Minute)
		c.NextAttemptAt = &next
		c.LastError = "GetResponse did not answer (timeout)"
	case r < 9:
		c.Status = models.StatusDisconnected
		at := lastRefresh
		c.DisconnectedAt = &at
	default:
		c.Status = models.StatusActive
	}
	return c
}

// spread mixes i (splitmix64's finaliser): consecutive rows get unrelated values.
func spread(i int) uint64 {
	x := uint64(i) + 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// seedMillion seeds the install at dsn and returns its description.
func seedMillion(b *testing.B, dsn string, box *secrets.Box, newest int) *millionSeed {
	b.Helper()
	start := time.Now()
	ctx := context.Background()
	store, err := models.Open(dsn, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	if _, err := store.MigrateSkipping(ctx, newest); err != nil {
		b.Fatal(err)
	}
	seed := &millionSeed{SeededAt: models.Now(), Versions: appliedVersions(b, store)}
	apps := services.NewApps(store, box, services.AppDefaults{AuthURL: "https://gr.invalid/oauth2_authorize.html", APIURL: "https://gr.invalid/v3"})
	for n, name := range []string{"Acme Newsletter", "Beta Shop", "Tiny Tools"} {
		app, err := apps.Create(ctx, services.AppInput{Name: name, ClientID: fmt.Sprintf("client-%d", n), ClientSecret: fmt.Sprintf("secret-%d", n)})
		if err != nil {
			b.Fatal(err)
		}
		seed.Apps[n] = app.ID
	}
	ops := services.NewOperators(store, box)
	ops.Cost = 4
	if _, err := ops.Create(ctx, millionEmail, millionPassword, millionPassword, models.RoleAdmin); err != nil {
		b.Fatal(err)
	}
	sqlDB, err := store.DB().DB()
	if err != nil {
		b.Fatal(err)
	}
	const perInsert, perTx = 500, 50_000
	conCols := []string{"id", "app_id", "customer_ref", "max_domain", "account_id", "account_email", "account_name", "company_name",
		"status", "access_token_enc", "refresh_token_enc", "token_fingerprint", "expires_at", "last_refresh_at", "last_error",
		"failure_count", "next_attempt_at", "connected_at", "disconnected_at", "created_at", "updated_at", "token_version"}
	evCols := []string{"connection_id", "app_id", "type", "message", "actor", "created_at"}
	insertCon, insertEv := multiInsert("connections", conCols, perInsert, store.IsPostgres()), multiInsert("events", evCols, 2*perInsert, store.IsPostgres())
	var tx *sql.Tx
	conArgs := make([]any, 0, perInsert*len(conCols))
	evArgs := make([]any, 0, 2*perInsert*len(evCols))
	for i := range millionRows {
		if i%perTx == 0 {
			if tx != nil {
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			if tx, err = sqlDB.Begin(); err != nil {
				b.Fatal(err)
			}
		}
		c := seedConnection(i, seed.SeededAt, seed.Apps)
		if c.Status != models.StatusDisconnected {
			c.AccessTokenEnc, _ = box.Seal(fmt.Sprintf("%040x", i), secrets.AAD("connection", c.ID, "access_token"))
			c.RefreshTokenEnc, _ = box.Seal(fmt.Sprintf("%040x", i+millionRows), secrets.AAD("connection", c.ID, "refresh_token"))
			sum := sha256.Sum256([]byte(c.ID))
			c.TokenFingerprint = hex.EncodeToString(sum[:4])
		}
		conArgs = append(conArgs, c.ID, c.AppID, c.CustomerRef, c.MaxDomain, c.AccountID, c.AccountEmail, c.AccountName, c.CompanyName,
			string(c.Status), c.AccessTokenEnc, c.RefreshTokenEnc, c.TokenFingerprint, *c.ExpiresAt, *c.LastRefreshAt, c.LastError,
			c.FailureCount, c.NextAttemptAt, c.ConnectedAt, c.DisconnectedAt, c.CreatedAt, c.UpdatedAt, c.TokenVersion)
		evArgs = append(evArgs,
			c.ID, c.AppID, string(models.EventConnectionCreated), "Connected account "+c.AccountEmail, "customer", c.ConnectedAt,
			c.ID, c.AppID, string(models.EventRefreshSucceeded), "Refreshed; valid until "+c.ExpiresAt.Format("2006-01-02 15:04 UTC"), "refresher", *c.LastRefreshAt)
		if (i+1)%perInsert == 0 {
			if _, err := tx.Exec(insertCon, conArgs...); err != nil {
				b.Fatal(err)
			}
			if _, err := tx.Exec(insertEv, evArgs...); err != nil {
				b.Fatal(err)
			}
			conArgs, evArgs = conArgs[:0], evArgs[:0]
		}
		if (i+1)%200_000 == 0 {
			b.Logf("seeded %d connections (%v)", i+1, time.Since(start).Round(time.Second))
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	// As autovacuum would have done on a real install of this size (statistics, and
	// the visibility map that lets an index-only scan skip the table); SQLite
	// gathers no statistics.
	if store.IsPostgres() {
		if err := store.DB().Exec("VACUUM (ANALYZE)").Error; err != nil {
			b.Fatal(err)
		}
	}
	seed.Took = time.Since(start)
	b.Logf("seeded %d connections and %d events in %v", millionRows, 2*millionRows, seed.Took.Round(time.Second))
	return seed
}

// multiInsert is an INSERT of rows rows into table, with placeholders of the engine.
func multiInsert(table string, cols []string, rows int, pg bool) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES ")
	n := 0
	for r := range rows {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for c := range cols {
			if c > 0 {
				sb.WriteString(", ")
			}
			n++
			if pg {
				sb.WriteString("$" + strconv.Itoa(n))
			} else {
				sb.WriteByte('?')
			}
		}
		sb.WriteByte(')')
	}
	return sb.String()
}

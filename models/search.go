package models

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	sqlitedriver "github.com/glebarez/go-sqlite"
	"gorm.io/gorm"
)

// The connection list's search finds any part of a connection's e-mail, account
// name, customer reference, account ID or MAX domain, ignoring case ("fischer"
// finds "Hans.Fischer@fischer-bikes.de"). Migration 19 indexes the five fields by
// their trigrams: an FTS5 trigram table on SQLite, a pg_trgm GIN index of the
// connection_search table on PostgreSQL. A search that few connections match reads them from that index and
// sorts them into the list's order; one that many match walks the list in its
// order (the status and app indexes) and checks each row, which finds a page's
// worth within a few thousand rows. Counting the index's matches, capped, says
// which of the two a search is.

// SearchMinLength is the shortest search matched anywhere in the fields; a shorter
// one (trigrams need three characters) matches an exact account ID or the start
// of an e-mail, name or customer reference.
const SearchMinLength = 3

// searchSparse is the most matches a search may have to be read from the index;
// with more, the list is walked instead (at least one row in searchSparse of
// a million matches, so a page of 50 is found within some 50,000 rows).
// Tests lower it.
var searchSparse = 1000

// searchCountWalk bounds the rows a count of a search with many matches reads:
// past it, the count found so far is a lower bound ("at least").
const searchCountWalk = 5_000

// searchFields are the fields a search looks in.
var searchFields = []string{"account_email", "account_name", "customer_ref", "account_id", "max_domain"}

// searchDocPG is the text PostgreSQL's trigram index covers (connection_search,
// migration 19): the five fields in lower case, separated by a character no
// search holds, so that no match spans two. prefix qualifies the columns ("c.",
// "NEW.").
func searchDocPG(prefix string) string {
	cols := make([]string, len(searchFields))
	for i, f := range searchFields {
		cols[i] = prefix + f
	}
	return "lower(" + strings.Join(cols, ` || E'\x1f' || `) + ")"
}

// searchFunc is the SQLite function that checks a row against a search while the
// list is walked: grconnect_search(needle, field...) is 1 when a field, in lower
// case, holds needle.
const searchFunc = "grconnect_search"

var registerSearch sync.Once

// registerSearchFunc makes searchFunc known to every SQLite connection opened
// after it (the driver's registry is the process's).
func registerSearchFunc() {
	registerSearch.Do(func() {
		sqlitedriver.MustRegisterDeterministicScalarFunction(searchFunc, -1, func(_ *sqlitedriver.FunctionContext, args []driver.Value) (driver.Value, error) {
			if len(args) == 0 {
				return int64(0), nil
			}
			needle, _ := args[0].(string)
			for _, a := range args[1:] {
				var field string
				switch v := a.(type) {
				case string:
					field = v
				case []byte:
					field = string(v)
				default:
					continue
				}
				if strings.Contains(foldSearch(field), needle) {
					return int64(1), nil
				}
			}
			return int64(0), nil
		})
	})
}

// foldSearch is the lower case both a search and the fields are compared in.
func foldSearch(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// NormalizeSearch trims a search and drops control characters (a pasted tab or
// line break, or the separator of the indexed text).
func NormalizeSearch(q string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, q))
}

// ShortSearch reports whether a (normalized) search is too short to be found
// anywhere: it then matches an exact account ID or the start of an e-mail,
// account name or customer reference.
func ShortSearch(q string) bool { return q != "" && utf8.RuneCountInString(q) < SearchMinLength }

// searchKind is what a search looks for.
type searchKind int

const (
	searchNone     searchKind = iota
	searchPrefix              // shorter than SearchMinLength: an exact account ID or the start of a field
	searchAnywhere            // any part of a field, through the trigram index
)

// searchPlan is a filter's search, decided once per query.
type searchPlan struct {
	kind   searchKind
	query  string // as typed (normalized)
	needle string // folded
	// dense: more than searchSparse connections match, so the list is walked in
	// its order and each row checked; otherwise the matches are read first (from
	// the trigram index, or the prefixes' indexes), once per query: ids.
	dense bool
	ids   []string
}

// planSearch decides how query runs: from the matches when it has at most
// searchSparse of them, else by walking the list.
func (s *Store) planSearch(ctx context.Context, query string) (searchPlan, error) {
	p := searchPlan{query: NormalizeSearch(query)}
	p.needle = foldSearch(p.query)
	switch {
	case p.query == "":
		return p, nil
	case ShortSearch(p.query):
		p.kind = searchPrefix
	default:
		p.kind = searchAnywhere
	}
	// The threshold is part of the key: a test may change it.
	key := strconv.Itoa(searchSparse) + "\x00" + p.needle
	if p.kind == searchPrefix {
		key = strconv.Itoa(searchSparse) + "\x00\x00" + p.query // a prefix compares names and references as typed
	}
	if s.plans.dense(key) {
		p.dense = true
		return p, nil
	}
	// The matches, up to one more than searchSparse: as many as that, and the
	// list is walked instead.
	var q *gorm.DB
	limit := searchSparse + 1
	switch {
	case p.kind == searchPrefix:
		cond, args := s.prefixCondition(p)
		q = s.db.WithContext(ctx).Raw("SELECT c.id FROM connections c WHERE "+cond+" LIMIT ?", append(args, limit)...)
	case s.postgres:
		q = s.db.WithContext(ctx).Raw("SELECT connection_id FROM connection_search WHERE doc LIKE ? LIMIT ?", likePattern(p.needle), limit)
	default:
		q = s.db.WithContext(ctx).Raw(`SELECT s.connection_id FROM connection_search s WHERE s.id IN
			(SELECT rowid FROM connection_search_index WHERE connection_search_index MATCH ? LIMIT ?)`, ftsPhrase(p.needle), limit)
	}
	p.ids = []string{} // joined as [] when none match
	if err := q.Scan(&p.ids).Error; err != nil {
		return p, storeError(err, "read the connections a search matches")
	}
	p.dense = len(p.ids) > searchSparse
	if p.dense {
		p.ids = nil
		s.plans.markDense(key)
	}
	return p, nil
}

// planCache remembers for a few seconds the searches that many connections
// match, so that a page's list and count (and its next page) need not read their
// matches again only to find them too many. Either way gives the same rows: a
// stale answer costs time, never results.
type planCache struct {
	mu sync.Mutex
	m  map[string]time.Time // when the search was found dense
}

const planFor = 10 * time.Second

// dense reports whether key was found dense within planFor.
func (c *planCache) dense(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.m[key]
	return ok && time.Since(at) <= planFor
}

// markDense remembers that key is dense (at most 256 searches at once).
func (c *planCache) markDense(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= 256 {
		c.m = map[string]time.Time{}
	}
	c.m[key] = time.Now()
}

// ftsPhrase is an FTS5 phrase that matches needle as it is.
func ftsPhrase(needle string) string { return `"` + strings.ReplaceAll(needle, `"`, `""`) + `"` }

// likePattern is a LIKE pattern that finds needle anywhere.
func likePattern(needle string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(needle) + "%"
}

// from is the list's FROM clause for a search: the connections a sparse search
// matches, read from the index first (the join keeps that order of work), else the
// whole table. Both name the connections c.
func (s *Store) from(db *gorm.DB, f ConnectionFilter, p searchPlan) *gorm.DB {
	switch {
	case p.kind == searchNone || p.dense:
		return db.Table("connections AS c" + s.listIndex(f))
	}
	// The matches read by planSearch, as one parameter (a list of values would
	// be a statement of its own for every number of matches).
	if s.postgres {
		return db.Table("unnest(?::text[]) AS m(id)", pgTextArray(p.ids)).Joins("JOIN connections c ON c.id = m.id")
	}
	ids, _ := json.Marshal(p.ids)
	// CROSS JOIN: SQLite keeps the left side outermost.
	return db.Table("json_each(?) AS m", string(ids)).Joins("CROSS JOIN connections c ON c.id = m.value")
}

// pgTextArray writes ids as a PostgreSQL text[] literal.
func pgTextArray(ids []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(id) + `"`)
	}
	b.WriteByte('}')
	return b.String()
}

// listIndex names, on SQLite, the index a walk of the list reads in its order:
// without statistics (grconnect gathers none) SQLite may prefer an index that
// matches the filter and then sort every row it holds, which at a million rows
// takes seconds. The orders by e-mail and customer reference walk their column's
// index when most rows pass the filter, and leave the choice to SQLite when a
// state or app narrows it (a walk of the column's index would then read row after
// row the filter drops).
func (s *Store) listIndex(f ConnectionFilter) string {
	narrowed := f.AppID != "" || f.part != nil || (f.Status != "" && f.Status != "live")
	switch {
	case s.postgres:
		return ""
	case f.Sort == SortEmail || f.Sort == SortCustomer:
		if narrowed {
			return ""
		}
		if f.Sort == SortEmail {
			return " INDEXED BY connections_account_email"
		}
		return " INDEXED BY connections_customer_ref"
	case f.part != nil && f.part.byApp:
		return " INDEXED BY connections_app_expires" // see planParts
	case f.part != nil:
		return " INDEXED BY connections_status_expires"
	case f.AppID != "" || f.Status == string(StatusPaused):
		// One app's range, or those of the few unhealthy apps (paused connections).
		return " INDEXED BY connections_app_expires"
	case f.Status != "" && f.Status != "live":
		return " INDEXED BY connections_status_expires"
	}
	return " INDEXED BY connections_expires"
}

// searchWhere adds a search's condition to a query on connections c.
func (s *Store) searchWhere(q *gorm.DB, p searchPlan) *gorm.DB {
	if p.kind == searchNone || !p.dense {
		return q // none, or sparse: the FROM clause holds only matches
	}
	cond, args := s.rowCondition(p)
	return q.Where(cond, args...)
}

// prefixCondition is a short search's condition on connections c: an exact
// account ID, or the start of the e-mail (in lower case), the account name or
// the customer reference. Prefix ranges keep every term on an index; "\U0010FFFF"
// sorts after any text in byte order. SQLite compares bytes; PostgreSQL compares
// by the database's collation (en_US would put "apple" and "Äpfel" between "A" and
// "A\U0010FFFF"), so there the ranges say COLLATE "C" and use the C-collated
// indexes of migration 5.
func (s *Store) prefixCondition(p searchPlan) (string, []any) {
	hi := func(p string) string { return p + "\U0010FFFF" }
	col := func(name string) string { return name }
	if s.postgres {
		col = func(name string) string { return name + ` COLLATE "C"` }
	}
	email, name, ref := col("c.account_email"), col("c.account_name"), col("c.customer_ref")
	return "(c.account_id = ? OR (" + email + " >= ? AND " + email + " < ?) OR (" + name + " >= ? AND " + name + " < ?) OR (" + ref + " >= ? AND " + ref + " < ?))",
		[]any{p.query, p.needle, hi(p.needle), p.query, hi(p.query), p.query, hi(p.query)}
}

// rowCondition is a search's check of one row of connections c as the list is
// walked.
func (s *Store) rowCondition(p searchPlan) (string, []any) {
	if p.kind == searchPrefix {
		return s.prefixCondition(p)
	}
	return s.denseCondition(p)
}

// denseCondition is a search's check of one row of connections c, as the list is
// walked. On SQLite the list's indexes carry the five fields, so the check reads
// no row: SQLite's LIKE ignores the case of ASCII letters, which is exactly the
// search's folding when the search has no other letters; otherwise the check is
// searchFunc, which folds as Go does.
func (s *Store) denseCondition(p searchPlan) (string, []any) {
	if s.postgres {
		return "strpos(" + searchDocPG("c.") + ", ?) > 0", []any{p.needle}
	}
	for i := 0; i < len(p.needle); i++ {
		if p.needle[i] >= utf8.RuneSelf {
			return searchFunc + "(?, c.account_email, c.account_name, c.customer_ref, c.account_id, c.max_domain) = 1", []any{p.needle}
		}
	}
	pattern := likePattern(p.needle)
	var conds []string
	var args []any
	for _, f := range searchFields {
		conds = append(conds, "c."+f+` LIKE ? ESCAPE '\'`)
		args = append(args, pattern)
	}
	return "(" + strings.Join(conds, " OR ") + ")", args
}

// countDense counts the connections a filter with a search that many connections
// match selects: the rows the filter selects are read in the list's order, at
// most searchCountWalk of them, and those the search matches counted, up to limit.
// When the walk stops short, the count is a lower bound (more is true).
func (s *Store) countDense(ctx context.Context, f ConnectionFilter, p searchPlan, limit int) (int64, bool, error) {
	cond, args := s.rowCondition(p)
	walk := s.where(s.db.WithContext(ctx).Table("connections AS c"+s.listIndex(f)), f, searchPlan{}).
		Select("CASE WHEN "+cond+" THEN 1 ELSE 0 END AS hit", args...).
		Order("c.expires_at, c.id").Limit(searchCountWalk)
	var r struct{ Read, Hits int64 }
	if err := s.db.WithContext(ctx).Table("(?) AS w", walk).Select("COUNT(*) AS read, COALESCE(SUM(hit), 0) AS hits").Scan(&r).Error; err != nil {
		return 0, false, storeError(err, "count the connections a search matches")
	}
	switch {
	case r.Hits > int64(limit):
		return int64(limit), true, nil
	case r.Read >= searchCountWalk:
		return r.Hits, true, nil
	}
	return r.Hits, false, nil
}

package models

import (
	"context"
	"database/sql/driver"
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
var searchSparse = defaultSearchSparse

const defaultSearchSparse = 1000

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

// searchKind is how a search runs.
type searchKind int

const (
	searchNone   searchKind = iota
	searchPrefix            // shorter than SearchMinLength
	searchSparseKind
	searchDenseKind
)

// searchPlan is a filter's search, decided once per query.
type searchPlan struct {
	kind   searchKind
	query  string // as typed (normalized)
	needle string // folded
}

// planSearch decides how query runs: from the index when it has at most
// searchSparse matches, else by walking the list.
func (s *Store) planSearch(ctx context.Context, query string) (searchPlan, error) {
	p := searchPlan{query: NormalizeSearch(query)}
	p.needle = foldSearch(p.query)
	switch {
	case p.query == "":
		return p, nil
	case utf8.RuneCountInString(p.query) < SearchMinLength:
		p.kind = searchPrefix
		return p, nil
	}
	if kind, ok := s.plans.get(p.needle); ok {
		p.kind = kind
		return p, nil
	}
	var n int64
	var err error
	if s.postgres {
		err = s.db.WithContext(ctx).Raw("SELECT COUNT(*) FROM (SELECT 1 FROM connection_search WHERE doc LIKE ? LIMIT ?) m",
			likePattern(p.needle), searchSparse+1).Scan(&n).Error
	} else {
		err = s.db.WithContext(ctx).Raw("SELECT COUNT(*) FROM (SELECT 1 FROM connection_search_index WHERE connection_search_index MATCH ? LIMIT ?)",
			ftsPhrase(p.needle), searchSparse+1).Scan(&n).Error
	}
	if err != nil {
		return p, storeError(err, "count the connections a search matches")
	}
	p.kind = searchDenseKind
	if n <= int64(searchSparse) {
		p.kind = searchSparseKind
	}
	s.plans.put(p.needle, p.kind)
	return p, nil
}

// planCache remembers for a few seconds which way a search runs, so that a page's
// list and count (and its next page) ask the index once. Either way gives the
// same rows: a stale answer costs time, never results.
type planCache struct {
	mu sync.Mutex
	m  map[string]plannedSearch
}

type plannedSearch struct {
	kind searchKind
	at   time.Time
}

const planFor = 10 * time.Second

func (c *planCache) get(needle string) (searchKind, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[needle]
	if !ok || time.Since(p.at) > planFor || searchSparse != defaultSearchSparse {
		return 0, false
	}
	return p.kind, true
}

func (c *planCache) put(needle string, kind searchKind) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= 256 {
		c.m = map[string]plannedSearch{}
	}
	c.m[needle] = plannedSearch{kind: kind, at: time.Now()}
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
	switch p.kind {
	case searchPrefix:
		return db.Table("connections AS c") // the prefixes' own indexes
	case searchNone, searchDenseKind:
		return db.Table("connections AS c" + s.listIndex(f))
	}
	if s.postgres {
		// OFFSET 0 keeps the planner from merging the match list into the walk.
		matches := s.db.Raw("SELECT connection_id AS id FROM connection_search WHERE doc LIKE ? OFFSET 0", likePattern(p.needle))
		return db.Table("(?) AS m", matches).Joins("JOIN connections c ON c.id = m.id")
	}
	// CROSS JOIN: SQLite keeps the left side outermost.
	matches := s.db.Raw(`SELECT s.connection_id AS id FROM connection_search s WHERE s.id IN
		(SELECT rowid FROM connection_search_index WHERE connection_search_index MATCH ?)`, ftsPhrase(p.needle))
	return db.Table("(?) AS m", matches).Joins("CROSS JOIN connections c ON c.id = m.id")
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
	case f.AppID != "" || f.Status == string(StatusPaused) || (f.part != nil && f.part.in):
		// One app's range, or those of the few unhealthy apps (paused connections).
		return " INDEXED BY connections_app_expires"
	case f.part != nil || (f.Status != "" && f.Status != "live"):
		return " INDEXED BY connections_status_expires"
	}
	return " INDEXED BY connections_expires"
}

// searchWhere adds a search's condition to a query on connections c.
func (s *Store) searchWhere(q *gorm.DB, p searchPlan) *gorm.DB {
	switch p.kind {
	case searchPrefix:
		// Prefix ranges keep every term on an index; "\U0010FFFF" sorts after any text
		// in byte order. SQLite compares bytes; PostgreSQL compares by the database's
		// collation (en_US would put "apple" and "Äpfel" between "A" and "A\U0010FFFF"),
		// so there the ranges say COLLATE "C" and use the C-collated indexes of
		// migration 5.
		hi := func(p string) string { return p + "\U0010FFFF" }
		col := func(name string) string { return name }
		if s.postgres {
			col = func(name string) string { return name + ` COLLATE "C"` }
		}
		email, name, ref := col("c.account_email"), col("c.account_name"), col("c.customer_ref")
		return q.Where("(c.account_id = ? OR ("+email+" >= ? AND "+email+" < ?) OR ("+name+" >= ? AND "+name+" < ?) OR ("+ref+" >= ? AND "+ref+" < ?))",
			p.query, p.needle, hi(p.needle), p.query, hi(p.query), p.query, hi(p.query))
	case searchDenseKind:
		cond, args := s.denseCondition(p)
		return q.Where(cond, args...)
	}
	return q // none, or sparse: the FROM clause holds only matches
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
	cond, args := s.denseCondition(p)
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

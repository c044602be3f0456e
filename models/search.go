package models

import (
	"context"
	"database/sql/driver"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	sqlitedriver "github.com/glebarez/go-sqlite"
	"gorm.io/gorm"
)

// The connection list's search finds any part of a connection's e-mail, account
// name, customer reference, account ID or MAX domain, ignoring case ("fischer"
// finds "Hans.Fischer@fischer-bikes.de"). Migration 19 indexes the five fields by
// their trigrams: an FTS5 trigram table on SQLite, a pg_trgm GIN index on
// PostgreSQL. A search that few connections match reads them from that index and
// sorts them into the list's order; one that many match walks the list in its
// order (the status and app indexes) and checks each row, which finds a page's
// worth within a few thousand rows. Counting the index's matches, capped, says
// which of the two a search is.

// SearchMinLength is the shortest search matched anywhere in the fields; a shorter
// one (trigrams need three characters) matches an exact account ID or the start
// of an e-mail, name or customer reference.
const SearchMinLength = 3

// searchSparse is the most matches a search may have to be read from the index;
// with more, the list is walked instead.
var searchSparse = 2000

// searchFields are the fields a search looks in.
var searchFields = []string{"account_email", "account_name", "customer_ref", "account_id", "max_domain"}

// searchExprPG is the text PostgreSQL's trigram index covers (migration 19, with
// no prefix): the five fields in lower case, separated by a character no search
// holds, so that no match spans two. prefix qualifies the columns ("c.").
func searchExprPG(prefix string) string {
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
	var n int64
	var err error
	if s.postgres {
		err = s.db.WithContext(ctx).Raw("SELECT COUNT(*) FROM (SELECT 1 FROM connections WHERE "+searchExprPG("")+" LIKE ? LIMIT ?) m",
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
	return p, nil
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
func (s *Store) from(db *gorm.DB, p searchPlan) *gorm.DB {
	if p.kind != searchSparseKind {
		return db.Table("connections AS c")
	}
	if s.postgres {
		// OFFSET 0 keeps the planner from merging the match list into the walk.
		matches := s.db.Raw("SELECT id FROM connections WHERE "+searchExprPG("")+" LIKE ? OFFSET 0", likePattern(p.needle))
		return db.Table("(?) AS m", matches).Joins("JOIN connections c ON c.id = m.id")
	}
	// CROSS JOIN: SQLite keeps the left side outermost.
	matches := s.db.Raw(`SELECT s.connection_id AS id FROM connection_search s WHERE s.id IN
		(SELECT rowid FROM connection_search_index WHERE connection_search_index MATCH ?)`, ftsPhrase(p.needle))
	return db.Table("(?) AS m", matches).Joins("CROSS JOIN connections c ON c.id = m.id")
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
		if s.postgres {
			return q.Where("strpos("+searchExprPG("c.")+", ?) > 0", p.needle)
		}
		return q.Where(searchFunc+"(?, c.account_email, c.account_name, c.customer_ref, c.account_id, c.max_domain)", p.needle)
	}
	return q // none, or sparse: the FROM clause holds only matches
}

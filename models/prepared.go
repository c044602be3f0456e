package models

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// prepared returns query (written with ? placeholders) as a statement prepared once
// per store. The API's per-request reads use it: going through database/sql
// directly, without GORM's statement building and reflection, makes them several
// times cheaper. (The SQLite driver still compiles the SQL on every call: a
// database/sql statement there keeps only its text.)
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	sqlDB, err := s.readPool()
	if err != nil {
		return nil, err
	}
	text := query
	if s.postgres {
		text = numberPlaceholders(query)
	}
	st, err := sqlDB.PrepareContext(ctx, text)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close() // another request prepared it first
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// numberPlaceholders turns ? placeholders into PostgreSQL's $1, $2, ….
func numberPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

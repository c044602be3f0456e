package models

import (
	"bytes"
	"compress/gzip"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/glebarez/sqlite"
)

// A new SQLite install starts from fresh.db.gz: an empty database with every
// migration applied when it was generated (go generate ./models), written whole
// in one step. Running the migrations one by one costs most of a first start's
// CPU (SQLite parses the whole schema again after each ALTER TABLE); laying down
// their result takes a few milliseconds. Migrate then applies any migration the
// image does not hold yet, so an image older than the code is slower, never
// wrong; TestFreshImageIsTheMigratedSchema fails until it is generated again.
//
//go:generate go test -run TestFreshImageIsTheMigratedSchema -update-fresh .

//go:embed fresh.db.gz
var freshImage []byte

// CreateSQLite lays down a new SQLite database at path, migrated as far as the
// image holds, when nothing exists at path (created is false otherwise, and
// nothing is touched). The file appears whole or not at all (it is written beside
// path, synced, then linked into place: a concurrent creator gets false), with
// mode 0600. Open and Migrate it as any other.
func CreateSQLite(path string) (created bool, err error) {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new-"+RandomToken(4))
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, fmt.Errorf("create the database: %w", err)
	}
	defer os.Remove(tmp)
	err = unpackFresh(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = stampFresh(tmp)
	}
	if err == nil {
		err = syncFile(tmp)
	}
	if err != nil {
		return false, fmt.Errorf("create the database: %w", err)
	}
	if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return false, nil // another process made it first: theirs is as good
	} else if err != nil {
		return false, fmt.Errorf("create the database: %w", err)
	}
	syncDir(filepath.Dir(path))
	return true, nil
}

// unpackFresh writes the image, uncompressed, into f.
func unpackFresh(f *os.File) error {
	zr, err := gzip.NewReader(bytes.NewReader(freshImage))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, zr); err != nil {
		return err
	}
	return zr.Close()
}

// stampFresh dates the image's migrations and probe row now. Nothing else has
// the file yet: no journal, no syncs (the file is synced whole afterwards).
func stampFresh(path string) error {
	db, err := sql.Open(sqlite.DriverName, "file:"+path+"?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)")
	if err != nil {
		return err
	}
	defer db.Close()
	now := Now()
	if _, err := db.Exec("UPDATE schema_migrations SET applied_at = ?", now); err != nil {
		return err
	}
	if _, err := db.Exec("UPDATE store_probe SET probed_at = ?", now); err != nil {
		return err
	}
	return db.Close()
}

//go:build !unix

package models

import "errors"

// DatabaseInUse cannot tell on this system whether a process has the database open.
func DatabaseInUse(path string) (bool, error) {
	return false, errors.New("cannot tell whether the database is in use on this system: stop grconnect first")
}

package secrets

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ParseKey decodes a base64 (standard or URL alphabet, padded or not) 32-byte key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != KeySize {
				return nil, fmt.Errorf("must decode to %d bytes, got %d", KeySize, len(key))
			}
			return key, nil
		}
	}
	return nil, errors.New("must be base64")
}

// LoadOrCreateKeyFile reads the key stored at path, or creates it (mode 0600) with a
// fresh random key when the file does not exist. created reports which happened.
func LoadOrCreateKeyFile(path string) (key []byte, created bool, err error) {
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := ParseKey(string(data))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	// Write a synced temporary file, then hard-link it into place: the link fails
	// when another process won the race, and nobody ever reads a half-written key.
	tmp, err := writeSyncedTemp(filepath.Dir(path), []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
	if err != nil {
		return nil, false, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
		return LoadOrCreateKeyFile(path)
	} else if err != nil {
		return nil, false, err
	}
	syncDir(filepath.Dir(path))
	return key, true, nil
}

// ReadKeyList reads a file of keys, one base64 key per line (blank lines and lines
// starting with # are skipped). A missing file is an empty list.
func ReadKeyList(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := ParseKey(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// RotateKeyFile replaces the key in path with a fresh one after adding the old key
// to previousPath, in that order and each file replaced atomically (written beside
// it, synced, renamed), so that at every moment the two files together still hold
// every key that sealed a stored value. It returns the new key and the retired one.
func RotateKeyFile(path, previousPath string) (newKey, oldKey []byte, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	oldKey, err = ParseKey(string(data))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	previous, err := ReadKeyList(previousPath)
	if err != nil {
		return nil, nil, err
	}
	var list strings.Builder
	list.WriteString("# Keys retired by grconnect rekey --new-key; they still open values sealed before.\n")
	list.WriteString("# Delete this file once grconnect rekey reports nothing left under previous keys.\n")
	for _, k := range previous {
		if KeyID(k) != KeyID(oldKey) {
			list.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
		}
	}
	list.WriteString(base64.StdEncoding.EncodeToString(oldKey) + "\n")
	if err := writeFileAtomic(previousPath, []byte(list.String())); err != nil {
		return nil, nil, err
	}
	newKey = make([]byte, KeySize)
	if _, err := rand.Read(newKey); err != nil {
		return nil, nil, err
	}
	if err := writeFileAtomic(path, []byte(base64.StdEncoding.EncodeToString(newKey)+"\n")); err != nil {
		return nil, nil, err
	}
	return newKey, oldKey, nil
}

// writeFileAtomic writes data to a 0600 file beside path, syncs it and renames it
// over path, then syncs the directory: readers see the old file or the new one.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := writeSyncedTemp(filepath.Dir(path), data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

// writeSyncedTemp writes data to a new 0600 file in dir, synced to disk, and
// returns its name; the caller links or renames it into place and removes it.
func writeSyncedTemp(dir string, data []byte) (string, error) {
	tmp, err := os.CreateTemp(dir, ".secret-key-*")
	if err != nil {
		return "", err
	}
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// syncDir makes a new name in dir durable (best effort: not every file system
// syncs directories).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

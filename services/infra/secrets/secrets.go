// Package secrets encrypts client secrets and OAuth tokens at rest.
//
// A sealed value is the text "v1.<key id>.<base64url(nonce|ciphertext)>": AES-256-GCM
// with a random 96-bit nonce, and the owning record's identity (for example
// "connection:con_abc:access_token") as additional data, so a ciphertext copied onto
// another record or field fails to open. The key ID is the first 4 bytes of the key's
// SHA-256: a Box holds the current key and any previous ones of a rotation, opens a
// value with the key it names, and seals only with the current key.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a secret key in bytes.
const KeySize = 32

const version = "v1"

// ErrDecrypt is returned when a sealed value cannot be opened: it was tampered with,
// belongs to another record, or was sealed with an unknown key.
var ErrDecrypt = errors.New("secrets: cannot decrypt value (tampered, moved or unknown key)")

// Box seals with one AES-256-GCM key (the current one) and opens with it or with
// any previous key still configured, picked by the key ID in the sealed value. It
// is safe for concurrent use.
type Box struct {
	current *boxKey
	keys    map[string]*boxKey // by key ID: the current key and the previous ones
	order   []*boxKey          // current first, then previous in the order given
}

// boxKey is one key and its cipher.
type boxKey struct {
	id   string
	aead cipher.AEAD
	root []byte
}

func newBoxKey(key []byte) (*boxKey, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secrets: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &boxKey{id: KeyID(key), aead: aead, root: append([]byte(nil), key...)}, nil
}

// KeyID returns the ID a key's sealed values carry: the first 4 bytes of its
// SHA-256, in hex.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// New returns a Box that seals with key and opens with key or any of previous (the
// keys of a rotation in progress).
func New(key []byte, previous ...[]byte) (*Box, error) {
	cur, err := newBoxKey(key)
	if err != nil {
		return nil, err
	}
	b := &Box{current: cur, keys: map[string]*boxKey{cur.id: cur}, order: []*boxKey{cur}}
	for i, p := range previous {
		k, err := newBoxKey(p)
		if err != nil {
			return nil, fmt.Errorf("secrets: previous key %d: %w", i+1, err)
		}
		if _, dup := b.keys[k.id]; dup {
			continue
		}
		b.keys[k.id] = k
		b.order = append(b.order, k)
	}
	return b, nil
}

// KeyID identifies the key that seals new values.
func (b *Box) KeyID() string { return b.current.id }

// HasPrevious reports whether the box holds keys besides the current one.
func (b *Box) HasPrevious() bool { return len(b.order) > 1 }

// PreviousKeyIDs identifies the previous keys the box still opens with.
func (b *Box) PreviousKeyIDs() []string {
	ids := make([]string, 0, len(b.order)-1)
	for _, k := range b.order[1:] {
		ids = append(ids, k.id)
	}
	return ids
}

// HasKey reports whether the box holds the key with that ID.
func (b *Box) HasKey(id string) bool {
	_, ok := b.keys[id]
	return ok
}

// SealedKeyID returns the key ID a sealed value carries ("" for "" or garbage).
func SealedKeyID(sealed string) string {
	parts := strings.SplitN(sealed, ".", 3)
	if len(parts) != 3 || parts[0] != version {
		return ""
	}
	return parts[1]
}

// IsCurrent reports whether sealed is empty or sealed with the current key: a key
// rotation (grconnect rekey) leaves such values as they are.
func (b *Box) IsCurrent(sealed string) bool {
	return sealed == "" || SealedKeyID(sealed) == b.current.id
}

// Seal encrypts plaintext bound to aad (the record's identity) with the current key.
// An empty plaintext seals to "" so that "no value" stays distinguishable without
// decrypting.
func (b *Box) Seal(plaintext, aad string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	k := b.current
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secrets: nonce: %w", err)
	}
	out := k.aead.Seal(nonce, nonce, []byte(plaintext), []byte(aad))
	return version + "." + k.id + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value made by Seal with the same aad, with whichever of the box's
// keys sealed it. "" opens to "".
func (b *Box) Open(sealed, aad string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	parts := strings.SplitN(sealed, ".", 3)
	if len(parts) != 3 || parts[0] != version {
		return "", ErrDecrypt
	}
	k, ok := b.keys[parts[1]]
	if !ok {
		return "", ErrDecrypt
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < k.aead.NonceSize() {
		return "", ErrDecrypt
	}
	nonce, ct := raw[:k.aead.NonceSize()], raw[k.aead.NonceSize():]
	pt, err := k.aead.Open(nil, nonce, ct, []byte(aad))
	if err != nil {
		return "", ErrDecrypt
	}
	return string(pt), nil
}

// Derive returns a 32-byte subkey of the current key for purpose (such as
// "known-browser"), so that no other use ever takes the root key directly.
func (b *Box) Derive(purpose string) []byte { return derive(b.current.root, purpose) }

// DeriveAll returns purpose's subkey of every key, the current one first: a value
// keyed before a rotation still verifies with one of them.
func (b *Box) DeriveAll(purpose string) [][]byte {
	out := make([][]byte, 0, len(b.order))
	for _, k := range b.order {
		out = append(out, derive(k.root, purpose))
	}
	return out
}

func derive(root []byte, purpose string) []byte {
	m := hmac.New(sha256.New, root)
	m.Write([]byte("grconnect/" + purpose))
	return m.Sum(nil)
}

// Fingerprint returns a short, non-reversible identifier of a token for display
// ("a1b2c3d4"), keyed so it cannot be matched against a guessed token offline.
func (b *Box) Fingerprint(token string) string {
	if token == "" {
		return ""
	}
	m := hmac.New(sha256.New, b.Derive("fingerprint"))
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil)[:4])
}

// AAD builds the additional data for a field of a record: "kind:id:field".
func AAD(kind, id, field string) string { return kind + ":" + id + ":" + field }

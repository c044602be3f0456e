// Package secrets encrypts client secrets and OAuth tokens at rest.
//
// A sealed value is the text "v1.<key id>.<base64url(nonce|ciphertext)>": AES-256-GCM
// with a random 96-bit nonce, and the owning record's identity (for example
// "connection:con_abc:access_token") as additional data, so a ciphertext copied onto
// another record or field fails to open. The key ID is the first 4 bytes of the key's
// SHA-256, which lets a later release hold several keys and rotate between them.
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

// Box seals and opens values with one AES-256-GCM key. It is safe for concurrent use.
type Box struct {
	keyID string
	aead  cipher.AEAD
	root  []byte
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
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
	sum := sha256.Sum256(key)
	return &Box{keyID: hex.EncodeToString(sum[:4]), aead: aead, root: append([]byte(nil), key...)}, nil
}

// KeyID identifies the key that seals new values.
func (b *Box) KeyID() string { return b.keyID }

// Seal encrypts plaintext bound to aad (the record's identity). An empty plaintext
// seals to "" so that "no value" stays distinguishable without decrypting.
func (b *Box) Seal(plaintext, aad string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secrets: nonce: %w", err)
	}
	out := b.aead.Seal(nonce, nonce, []byte(plaintext), []byte(aad))
	return version + "." + b.keyID + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a value made by Seal with the same aad. "" opens to "".
func (b *Box) Open(sealed, aad string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	parts := strings.SplitN(sealed, ".", 3)
	if len(parts) != 3 || parts[0] != version || parts[1] != b.keyID {
		return "", ErrDecrypt
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < b.aead.NonceSize() {
		return "", ErrDecrypt
	}
	nonce, ct := raw[:b.aead.NonceSize()], raw[b.aead.NonceSize():]
	pt, err := b.aead.Open(nil, nonce, ct, []byte(aad))
	if err != nil {
		return "", ErrDecrypt
	}
	return string(pt), nil
}

// Derive returns a 32-byte subkey for purpose (such as "session-auth"), so that
// cookie signing and encryption never reuse the root key directly.
func (b *Box) Derive(purpose string) []byte {
	m := hmac.New(sha256.New, b.root)
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

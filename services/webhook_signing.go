package services

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// webhookSecretPrefix starts every signing secret, as Standard Webhooks writes them.
const webhookSecretPrefix = "whsec_"

// newWebhookSecret returns a new signing secret: whsec_ and 32 random bytes in
// standard base64, the form every Standard Webhooks library reads.
func newWebhookSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on a working system
	}
	return webhookSecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// webhookKey returns the HMAC key of a signing secret: the bytes its base64
// after whsec_ encodes. Secrets made before grconnect signed the Standard way
// (whsec_ and 39 lowercase base32 characters, which are base64 characters too)
// read as base64 padded to whole quanta, as the Standard Webhooks libraries of
// PHP and Python read them: their Standard form is the same secret with one "="
// appended (see docs/webhooks.md).
func webhookKey(secret string) ([]byte, error) {
	enc := strings.TrimPrefix(secret, webhookSecretPrefix)
	if len(enc)%4 != 0 {
		enc += strings.Repeat("=", 4-len(enc)%4)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) == 0 {
		return nil, errors.New("the webhook signing secret is not whsec_ and base64")
	}
	return key, nil
}

// StandardSignature returns a Standard Webhooks signature of a message: "v1,"
// and the base64 HMAC-SHA256, keyed with the secret's key, of
// "<webhook-id>.<webhook-timestamp>.<body>".
func StandardSignature(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Signature signs a webhook body the old way, for the X-Grconnect-Signature
// header (deprecated; sent beside the Standard Webhooks headers for one more
// release): "t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">", keyed with the
// secret's text itself.
func Signature(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.", ts)
	m.Write(body)
	return "t=" + strconv.FormatInt(ts, 10) + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

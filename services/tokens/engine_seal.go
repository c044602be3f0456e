package tokens

import (
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// SealTokens encrypts a token response for connection id: each token bound to the
// connection and its field, so a sealed value moved elsewhere does not open.
func SealTokens(box *secrets.Box, id string, tok *getresponse.Token, now time.Time) (models.SealedTokens, error) {
	var st models.SealedTokens
	var err error
	if st.AccessEnc, err = box.Seal(tok.AccessToken, secrets.AAD("connection", id, "access_token")); err != nil {
		return st, err
	}
	if st.RefreshEnc, err = box.Seal(tok.RefreshToken, secrets.AAD("connection", id, "refresh_token")); err != nil {
		return st, err
	}
	st.Fingerprint = box.Fingerprint(tok.AccessToken)
	st.ExpiresAt = tok.Expiry.UTC().Truncate(time.Microsecond)
	if tok.Expiry.IsZero() {
		// GetResponse documents expires_in on every answer; assume its usual hour if it is missing.
		st.ExpiresAt = now.Add(time.Hour)
	}
	return st, nil
}

// openAccessToken opens a connection's sealed access token.
func (t *Tokens) openAccessToken(id, sealed string) (string, error) {
	return t.box.Open(sealed, secrets.AAD("connection", id, "access_token"))
}

package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services"
	"github.com/grconnect/grconnect/services/infra/secrets"
)

// dbSessionStore is gorilla/sessions' Store for operator sessions, backed by the
// operator_sessions table (services.Sessions). The cookie holds only the session's
// random token, signed with a key derived from the install's key; the row, found by
// the token's hash, holds everything else. So a session ends for every browser the
// moment its row goes (sign out, "sign out everywhere", an operator removed), its
// lifetime is the row's, and the sessions page lists the rows.
//
// A session's values are the operator and the row (read, never sent to the
// browser) and gorilla's flash messages, which Save writes to the row.
type dbSessionStore struct {
	sessions *services.Sessions
	codecs   []securecookie.Codec
	options  sessions.Options
}

// sessionValue keys the values a dbSessionStore session holds in memory.
type sessionValue int

const (
	valueToken    sessionValue = iota // the cookie's token (string)
	valueRow                          // *models.OperatorSession
	valueOperator                     // *models.Operator
	valueClient                       // the signing-in browser (sessionClient), for a new session
)

// sessionClient describes the browser a new session starts in, for the sessions page.
type sessionClient struct{ userAgent, ip string }

// flashKey is where gorilla keeps flash messages among a session's values.
const flashKey = "_flash"

// errSessionEnded reports a cookie whose session is over (signed out, expired,
// idle, operator removed): the browser should forget it.
var errSessionEnded = errors.New("session ended")

// newSessionStore returns the store for the cookie name, signing with box's
// current key and accepting cookies signed with its previous ones (a key rotation
// signs nobody out).
func newSessionStore(sess *services.Sessions, box *secrets.Box, names cookieNames) *dbSessionStore {
	var pairs [][]byte
	for _, key := range box.DeriveAll("cookie/session") {
		pairs = append(pairs, key, nil) // signed, not encrypted: the token is random
	}
	codecs := securecookie.CodecsFromPairs(pairs...)
	for _, c := range codecs {
		c.(*securecookie.SecureCookie).MaxAge(int(services.SessionLifetime.Seconds()))
	}
	return &dbSessionStore{sessions: sess, codecs: codecs, options: sessions.Options{
		Path: "/", HttpOnly: true, Secure: names.secure, SameSite: http.SameSiteLaxMode,
	}}
}

// Get returns the request's session of that name, read once per request.
func (st *dbSessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(st, name)
}

// New reads the session the request's cookie names. Without a valid cookie it is a
// new, empty session; a cookie whose session is over gives errSessionEnded with a
// new session.
func (st *dbSessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(st, name)
	opts := st.options
	sess.Options = &opts
	sess.IsNew = true
	ck, err := r.Cookie(name)
	if err != nil || ck.Value == "" {
		return sess, nil
	}
	var token string
	if err := securecookie.DecodeMulti(name, ck.Value, &token, st.codecs...); err != nil {
		return sess, errSessionEnded // forged, damaged, or signed with a key no longer held
	}
	row, op, err := st.sessions.Resume(r.Context(), token)
	if err != nil {
		return sess, err
	}
	if row == nil {
		return sess, errSessionEnded
	}
	sess.ID, sess.IsNew = row.ID, false
	sess.Values[valueToken], sess.Values[valueRow], sess.Values[valueOperator] = token, row, op
	if row.Flash != "" {
		sess.Values[flashKey] = []any{row.Flash}
	}
	return sess, nil
}

// Save writes a session: MaxAge < 0 ends its row and forgets the cookie; a new
// session with an operator starts a row and sets the signed cookie; an existing
// one stores its flash message when it changed.
func (st *dbSessionStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	ctx := r.Context()
	row, _ := sess.Values[valueRow].(*models.OperatorSession)
	switch {
	case sess.Options.MaxAge < 0:
		if row != nil {
			if err := st.sessions.SignOut(ctx, row.OperatorID, row.ID); err != nil && !errors.Is(err, models.ErrNotFound) {
				return err
			}
			delete(sess.Values, valueRow)
		}
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", sess.Options))
		return nil
	case row == nil:
		op, _ := sess.Values[valueOperator].(*models.Operator)
		if op == nil {
			return nil // nobody signed in: nothing to keep
		}
		client, _ := sess.Values[valueClient].(sessionClient)
		token, started, err := st.sessions.Start(ctx, op, client.userAgent, client.ip)
		if err != nil {
			return err
		}
		encoded, err := securecookie.EncodeMulti(sess.Name(), token, st.codecs...)
		if err != nil {
			return err
		}
		// The row decides when the session ends; the cookie only lasts as long.
		sess.Options.MaxAge = int(started.ExpiresAt.Sub(started.CreatedAt) / time.Second)
		sess.ID, sess.IsNew = started.ID, false
		sess.Values[valueToken], sess.Values[valueRow] = token, started
		delete(sess.Values, valueClient)
		http.SetCookie(w, sessions.NewCookie(sess.Name(), encoded, sess.Options))
		return nil
	}
	flash := ""
	if f, _ := sess.Values[flashKey].([]any); len(f) > 0 {
		flash, _ = f[len(f)-1].(string) // one message a page: the newest
	}
	if flash == row.Flash {
		return nil
	}
	if err := st.sessions.SetFlash(ctx, row.ID, flash); err != nil {
		return err
	}
	row.Flash = flash
	return nil
}

// newStateCookieStore returns the store of the OAuth state cookie: gorilla's
// CookieStore, signed and encrypted with keys derived from the install's key (the
// previous keys still open cookies made before a rotation). It holds the browser's
// nonce, which binds a pending authorization to the browser that started it.
func newStateCookieStore(box *secrets.Box, names cookieNames, maxAge time.Duration) *sessions.CookieStore {
	hashKeys, blockKeys := box.DeriveAll("cookie/oauth-state/mac"), box.DeriveAll("cookie/oauth-state/enc")
	var pairs [][]byte
	for i := range hashKeys {
		pairs = append(pairs, hashKeys[i], blockKeys[i])
	}
	st := sessions.NewCookieStore(pairs...)
	st.Options = &sessions.Options{Path: names.oauthPath, HttpOnly: true, Secure: names.secure, SameSite: http.SameSiteLaxMode}
	st.MaxAge(int(maxAge.Seconds()))
	return st
}

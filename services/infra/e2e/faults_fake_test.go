package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"

	"github.com/grconnect/grconnect/services/getresponse/getresponsetest"
)

// The fault-injection suite's view of the fake GetResponse: every refresh request
// recorded with its start and end, and the tokens the fake issued.

// refreshCall is one refresh request that reached the fake GetResponse.
type refreshCall struct {
	rt         string    // the refresh token presented
	start, end time.Time // end: when the answer was written (zero while in flight)
	status     int
}

// tokenRecorder wraps the fake: it records every refresh request, and holds each
// token answer for a latency after the fake granted it, as a real provider's answer
// travels after the provider rotated the token. A client killed meanwhile loses
// the answer (and, under strict rotation, the connection).
type tokenRecorder struct {
	fake    *getresponsetest.Fake
	latency func() time.Duration // nil: none

	mu    sync.Mutex
	calls []*refreshCall
}

func (rec *tokenRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v3/token" || r.Method != http.MethodPost {
		rec.fake.ServeHTTP(w, r)
		return
	}
	arrived := time.Now()
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	var call *refreshCall
	if form.Get("grant_type") == "refresh_token" {
		call = &refreshCall{rt: form.Get("refresh_token"), start: arrived}
		rec.mu.Lock()
		rec.calls = append(rec.calls, call)
		rec.mu.Unlock()
	}
	buf := httptest.NewRecorder()
	rec.fake.ServeHTTP(buf, r)
	if rec.latency != nil {
		time.Sleep(rec.latency()) // granted: the answer is on its way whatever the client does
	}
	for k, v := range buf.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(buf.Code)
	_, _ = w.Write(buf.Body.Bytes())
	if call != nil {
		rec.mu.Lock()
		call.end, call.status = time.Now(), buf.Code
		rec.mu.Unlock()
	}
}

// count returns how many refresh calls arrived.
func (rec *tokenRecorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.calls)
}

// inFlightNow returns how many refresh calls await their answer.
func (rec *tokenRecorder) inFlightNow() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for i := len(rec.calls) - 1; i >= 0 && i >= len(rec.calls)-256; i-- {
		if rec.calls[i].end.IsZero() {
			n++
		}
	}
	return n
}

// waitInFlight waits (up to limit) until at least n refresh calls await their
// answer, so that a fault lands while refreshing; it reports whether they did.
func (rec *tokenRecorder) waitInFlight(n int, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if rec.inFlightNow() >= n {
			return true
		}
	}
	return false
}

// snapshot returns a copy of the calls recorded so far.
func (rec *tokenRecorder) snapshot() []refreshCall {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make([]refreshCall, len(rec.calls))
	for i, c := range rec.calls {
		out[i] = *c
	}
	return out
}

// inFlight returns the refresh calls in flight at a kill signalled at before and
// reaped at after: started before the process died, and not answered before the
// signal (unanswered) or answered less than inFlightWindow before it (answered).
func inFlight(calls []refreshCall, before, after time.Time) (unanswered, answered []refreshCall) {
	for _, c := range calls {
		switch {
		case !c.start.Before(after):
		case c.end.IsZero() || c.end.After(before):
			unanswered = append(unanswered, c)
		case c.end.After(before.Add(-inFlightWindow)):
			answered = append(answered, c)
		}
	}
	return unanswered, answered
}

// fakeRefreshToken is what the fake knows of a refresh token (from its Snapshot).
type fakeRefreshToken struct {
	AccountID  string    `json:"account_id"`
	Retired    bool      `json:"retired"`
	GraceUntil time.Time `json:"grace_until"`
}

// dead reports whether the fake refuses the token at now.
func (rt fakeRefreshToken) dead(now time.Time) bool { return rt.Retired && !now.Before(rt.GraceUntil) }

// fakeRefreshTokens returns every refresh token the fake ever issued (strict
// rotation retires tokens, never forgets them).
func fakeRefreshTokens(f *getresponsetest.Fake) (map[string]fakeRefreshToken, error) {
	data, err := f.Snapshot()
	if err != nil {
		return nil, err
	}
	var s struct {
		Refresh map[string]fakeRefreshToken `json:"refresh_tokens"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	return s.Refresh, nil
}

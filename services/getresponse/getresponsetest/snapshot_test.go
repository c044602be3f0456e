package getresponsetest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSnapshotRestore: a restarted fake, given the snapshot of the old one,
// accepts its clients, accounts, tokens and plans as they were.
func TestSnapshotRestore(t *testing.T) {
	clk := &clock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	old := newTestServer(t, Options{Now: clk.Now, Rotation: RotationStrict})
	old.AddAccount(Account{AccountID: "Max1", Domain: "shop.example.com", FirstName: "Sam", Email: "sam@shop.example.com"})
	access, refresh := tokens(t, old)
	rotated := refresh
	refresh = tokenCall(t, old, refreshForm(refresh), nil).json(t)["refresh_token"].(string)
	_, doomed := tokens(t, old)
	old.RejectNextRefresh(doomed)
	redirect, _ := old.Decide(Consent{ClientID: clientID, State: "s", NewName: "Zoe Park", NewEmail: "zoe@example.net"})
	code := codeFrom(t, redirect)
	if err := old.SetOutage("Qm7Kp", clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	snap, err := old.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"se cret+", refresh, access} {
		if !bytes.Contains(snap, []byte(secret)) {
			t.Fatalf("the snapshot lacks %q", secret)
		}
	}

	s := NewServer(Options{Now: clk.Now, Rotation: RotationStrict})
	t.Cleanup(s.Close)
	if err := s.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if a := get(t, s, s.APIURL()+"/accounts", bearer(access)); a.status != http.StatusOK || a.json(t)["accountId"] != DefaultAccountID {
		t.Errorf("an old access token: %d %s", a.status, a.body)
	}
	if a := tokenCall(t, s, refreshForm(refresh), nil); a.status != http.StatusOK {
		t.Errorf("the current refresh token: %d %s", a.status, a.body)
	}
	if a := tokenCall(t, s, refreshForm(rotated), nil); a.status != http.StatusBadRequest || s.Stat(StatDeadRefreshToken) != 1 {
		t.Errorf("the rotated-away refresh token: %d, dead %d", a.status, s.Stat(StatDeadRefreshToken))
	}
	if a := tokenCall(t, s, refreshForm(doomed), nil); a.status != http.StatusBadRequest {
		t.Errorf("the token marked for rejection: %d", a.status)
	}
	a := exchange(t, s, code)
	if a.status != http.StatusOK {
		t.Fatalf("the pending code: %d %s", a.status, a.body)
	}
	if a := get(t, s, s.APIURL()+"/accounts", bearer(a.json(t)["access_token"].(string))); a.json(t)["email"] != "zoe@example.net" {
		t.Errorf("the typed account: %s", a.body)
	}
	if until, ok := s.Outage("Qm7Kp"); !ok || !until.Equal(clk.Now().Add(time.Hour)) {
		t.Errorf("Outage = %v, %v", until, ok)
	}
	if got, want := len(s.Accounts()), len(old.Accounts()); got != want {
		t.Errorf("%d accounts, want %d", got, want)
	}
	if got := s.Accounts()[3]; got.Domain != "shop.example.com" {
		t.Errorf("account %+v lost its domain", got)
	}
	if s.Count(EndpointToken) != 4 {
		t.Errorf("Count(EndpointToken) = %d: counters are not part of a snapshot", s.Count(EndpointToken))
	}

	for _, bad := range []string{`{`, `{"version":99}`, `{"version":1,"accounts":[{"AccountID":"a"},{"AccountID":"a"}]}`} {
		if err := s.Restore([]byte(bad)); err == nil {
			t.Errorf("Restore(%s) = nil", bad)
		}
	}
	if a := tokenCall(t, s, refreshForm(refresh), nil); a.status != http.StatusBadRequest && a.status != http.StatusOK {
		t.Errorf("a failed Restore changed the state: %d", a.status)
	}
	if len(s.Accounts()) != len(old.Accounts()) {
		t.Error("a failed Restore changed the accounts")
	}
}

// TestOnChange: every change of the saved state is reported, OnChange never
// runs twice at once, may take a Snapshot, and the last call sees the last
// change.
func TestOnChange(t *testing.T) {
	var (
		calls, running, overlaps atomic.Int64
		mu                       sync.Mutex
		last                     []byte
		f                        *Fake
	)
	f = New(Options{PerSecond: -1, Parallel: -1, Rotation: RotationRotate, OnChange: func() {
		if running.Add(1) > 1 {
			overlaps.Add(1)
		}
		defer running.Add(-1)
		calls.Add(1)
		snap, err := f.Snapshot()
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		last = snap
		mu.Unlock()
	}})
	s := &Server{Fake: f, srv: httptest.NewServer(f)}
	t.Cleanup(s.Close)

	s.AddClient(clientID, clientSecret, redirectURL)
	if calls.Load() != 1 {
		t.Fatalf("AddClient: %d calls", calls.Load())
	}
	_, refresh := tokens(t, s) // the consent and the exchange
	if calls.Load() != 3 {
		t.Fatalf("after consent and exchange: %d calls, want 3", calls.Load())
	}
	get(t, s, s.APIURL()+"/accounts", nil) // no change
	tokenCall(t, s, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"unknown"}}, nil)
	if calls.Load() != 3 {
		t.Fatalf("calls that change nothing: %d calls, want 3", calls.Load())
	}

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if a := tokenCall(t, s, refreshForm(refresh), nil); a.status != http.StatusOK {
				t.Errorf("refresh: %d", a.status)
			}
		})
	}
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Errorf("OnChange overlapped itself %d times", overlaps.Load())
	}
	if n := calls.Load(); n < 4 || n > 53 {
		t.Errorf("%d calls for 50 refreshes", n)
	}
	now, _ := f.Snapshot()
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(last, now) {
		t.Error("the last OnChange did not see the last change")
	}
}

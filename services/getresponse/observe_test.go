package getresponse_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/grconnect/grconnect/services/getresponse"
)

// call is one report to the client's observer.
type call struct {
	kind   string
	status int
}

// TestObserverSeesEveryCall: each call to GetResponse is reported once with its
// kind and status — token calls (refresh), API calls (Do) and relayed ones
// (Forward), and a call without an answer as status 0.
func TestObserverSeesEveryCall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v3/token":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant","error_description":"expired"}`)
		case "/v3/accounts":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"accountId":"A1"}`)
		default:
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	var mu sync.Mutex
	var seen []call
	c := getresponse.New(nil)
	c.Observe = func(kind string, status int, took time.Duration) {
		if took < 0 {
			t.Errorf("negative duration %v", took)
		}
		mu.Lock()
		seen = append(seen, call{kind, status})
		mu.Unlock()
	}
	app := getresponse.App{ClientID: "c", ClientSecret: "s", APIURL: srv.URL + "/v3", AuthURL: srv.URL + "/auth"}
	ctx := context.Background()
	if _, err := c.Refresh(ctx, app, "rt"); err == nil {
		t.Fatal("refresh succeeded")
	}
	if _, err := c.Do(ctx, app, "at", http.MethodGet, "/accounts", nil, nil); err != nil {
		t.Fatal(err)
	}
	res, err := c.Forward(ctx, app, "at", getresponse.ForwardRequest{Method: http.MethodGet, Path: "/campaigns", ContentLength: -1})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String() + "/v3"
	ln.Close()
	if _, err := c.Do(ctx, getresponse.App{ClientID: "c", APIURL: dead}, "at", http.MethodGet, "/accounts", nil, nil); err == nil {
		t.Fatal("a call to a closed port succeeded")
	}
	want := []call{{"token", 400}, {"api", 200}, {"proxy", 429}, {"api", 0}}
	if len(seen) != len(want) {
		t.Fatalf("observed %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("call %d observed as %v, want %v", i, seen[i], want[i])
		}
	}
}

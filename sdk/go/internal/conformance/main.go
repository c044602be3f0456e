// Command conformance is the SDK conformance scenario, run by sdk/conformance (in
// grconnect's module) against a real grconnect.
//
// It talks to the Go driver one line at a time (its requests on stdout, the answers
// on stdin) and exits non-zero, saying why on stderr, when the SDK misbehaves.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	grconnect "github.com/grconnect/grconnect/sdk/go"
)

var answers = bufio.NewScanner(os.Stdin)

func ask(request string) string {
	fmt.Println(request)
	answer := ""
	if answers.Scan() {
		answer = strings.TrimSpace(answers.Text())
	}
	if answer == "" || strings.HasPrefix(answer, "error") {
		fail("the driver could not do %s: %s", strings.Fields(request)[0], answer)
	}
	return answer
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "conformance: "+format+"\n", args...)
	os.Exit(1)
}

func check(ok bool, format string, args ...any) {
	if !ok {
		fail(format, args...)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		fail("%v", err)
	}
	return v
}

func main() {
	ctx := context.Background()
	ref, appID := os.Getenv("GRCONNECT_CUSTOMER_REF"), os.Getenv("GRCONNECT_APP_ID")
	gc := must(grconnect.New(os.Getenv("GRCONNECT_URL"), os.Getenv("GRCONNECT_API_KEY"), grconnect.WithUserAgent("sdk-conformance")))

	// A connect session, completed by a customer through the simulated consent.
	session := must(gc.CreateConnectSession(ctx, grconnect.ConnectSessionParams{AppID: appID, CustomerRef: ref}))
	check(session.ID != "" && strings.HasPrefix(session.URL, "http") && session.ExpiresAt.After(time.Now()), "connect session %+v", session)
	ask("consent " + session.URL)

	var conns []grconnect.Connection
	for c, err := range gc.Connections(ctx, grconnect.ConnectionFilter{CustomerRef: ref}) {
		conns = append(conns, must(c, err))
	}
	check(len(conns) == 1, "%d connections of %s; want 1", len(conns), ref)
	conn := must(gc.Connection(ctx, conns[0].ID))
	check(conn.Status == grconnect.StatusActive && conn.AppID == appID && conn.Account.Email == os.Getenv("GRCONNECT_ACCOUNT_EMAIL"), "connection %+v", conn)

	// Two tokens, the second from the cache.
	first, second := must(gc.Token(ctx, conn.ID)), must(gc.Token(ctx, conn.ID))
	check(first.AccessToken != "" && first == second, "tokens %v then %v", first, second)
	check(first.ExpiresAt.After(time.Now().Add(time.Minute)), "token expires %v", first.ExpiresAt)
	check(ask("token-requests "+conn.ID) == "1", "the second token call was not served from the cache")

	// A GetResponse call through the proxy.
	var fields []struct {
		FromFieldID string `json:"fromFieldId"`
	}
	res := must(gc.Proxy(ctx, conn.ID, grconnect.ProxyRequest{Path: "/from-fields"}))
	check(res.StatusCode == http.StatusOK && res.DecodeJSON(&fields) == nil && len(fields) > 0 && fields[0].FromFieldID != "",
		"GET /from-fields: %d %.200s", res.StatusCode, res.Body)

	// GetResponse answers 429 with Retry-After: 1; the SDK waits it out once.
	ask("arm-429 " + conn.ID)
	start := time.Now()
	res = must(gc.Proxy(ctx, conn.ID, grconnect.ProxyRequest{Method: http.MethodGet, Path: "/from-fields"}))
	waited := time.Since(start)
	check(res.StatusCode == http.StatusOK, "GET /from-fields after a 429: %d %.200s", res.StatusCode, res.Body)
	check(waited >= time.Second, "answered after %v; the 429 asked for 1 s", waited)
	check(ask("proxy-requests "+conn.ID) == "3", "the 429 was not sent again exactly once")

	// An error with its code: a disconnected connection has no token.
	check(must(gc.Disconnect(ctx, conn.ID)).Status == grconnect.StatusDisconnected, "disconnect")
	_, err := gc.Token(ctx, conn.ID)
	var ae *grconnect.APIError
	check(errors.As(err, &ae) && ae.Code == grconnect.CodeDisconnected && ae.StatusCode == http.StatusConflict && ae.RequestID != "",
		"token after disconnect: %v", err)
	_, err = gc.Connection(ctx, "con_doesnotexist")
	check(grconnect.CodeOf(err) == grconnect.CodeNotFound && errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound, "unknown connection: %v", err)

	// A real delivery verifies; a tampered copy does not.
	var hook struct {
		Secret  string            `json:"secret"`
		Headers map[string]string `json:"headers"`
		Body    string            `json:"body"`
	}
	check(json.Unmarshal([]byte(ask("webhook "+conn.ID)), &hook) == nil, "the driver's webhook answer is not JSON")
	body := must(base64.StdEncoding.DecodeString(hook.Body))
	header := http.Header{}
	for k, v := range hook.Headers {
		header.Set(k, v)
	}
	if err := grconnect.VerifyWebhook(hook.Secret, header, body); err != nil {
		fail("a real delivery: %v", err)
	}
	tampered := bytes.Replace(body, []byte(ref), []byte("mallory"), 1)
	check(!bytes.Equal(tampered, body), "the delivery does not name the customer")
	var we *grconnect.WebhookError
	err = grconnect.VerifyWebhook(hook.Secret, header, tampered)
	check(errors.As(err, &we) && we.Reason == grconnect.WebhookNoMatch, "tampered delivery: %v", err)

	fmt.Println("done")
}

package tokens

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/grconnect/grconnect/models"
	"github.com/grconnect/grconnect/services/getresponse"
)

// TestEndpoints are the calls an operator can try from the dashboard.
var TestEndpoints = []string{"/from-fields", "/accounts", "/campaigns"}

// TestCallResult is what a test call saw.
type TestCallResult struct {
	Path       string
	StatusCode int
	Latency    time.Duration
	RateLimit  getresponse.RateLimit
	JSON       string // the answer, pretty-printed (truncated when huge)
	FromFields []getresponse.FromField
	Account    *getresponse.Account
	Campaigns  []getresponse.Campaign
	// Notes say what the engine did around the call ("refreshed first", "retried after 1014").
	Notes []string
	Error string // the failure in words, when the call failed
}

// TestCall runs GET path (one of TestEndpoints) for a connection. An expired-token
// answer (401/1014) triggers one refresh and one retry.
func (t *Tokens) TestCall(ctx context.Context, id, path, actor string) (*TestCallResult, error) {
	allowed := false
	for _, p := range TestEndpoints {
		allowed = allowed || p == path
	}
	if !allowed {
		return nil, models.FieldErrors{"endpoint": "Choose one of the listed calls."}
	}
	res := &TestCallResult{Path: path}
	grant, err := t.AccessToken(ctx, id, actor)
	if err != nil {
		return nil, err
	}
	token := grant.Token
	if grant.Refreshed {
		res.Notes = append(res.Notes, "The access token was about to expire, so it was refreshed before the call.")
	}
	app, err := t.App(ctx, grant.AppID)
	if err != nil {
		return nil, err
	}
	ga, err := ClientFor(t.box, app, grant.Identity, t.redirectURL)
	if err != nil {
		return nil, err
	}
	resp, callErr := t.gr.Do(ctx, ga, token, http.MethodGet, path, nil, nil)
	if errors.Is(callErr, getresponse.ErrTokenExpired) {
		res.Notes = append(res.Notes, "GetResponse answered that the access token is expired (code 1014), so it was refreshed once and the call retried.")
		if _, rerr := t.Refresh(ctx, id, actor); rerr != nil {
			return nil, rerr
		}
		if grant, err = t.AccessToken(ctx, id, actor); err != nil {
			return nil, err
		}
		token = grant.Token
		resp, callErr = t.gr.Do(ctx, ga, token, http.MethodGet, path, nil, nil)
	}
	if resp != nil {
		res.StatusCode, res.Latency, res.RateLimit = resp.StatusCode, resp.Latency, resp.RateLimit
		t.observeBudget(app.APIURL, grant.Identity.MaxDomain, grant.AccountID, resp.RateLimit, 0)
		// An error's context may echo the sent token ({"sentToken": …}): never show it.
		res.JSON = prettyJSON(bytes.ReplaceAll(resp.Body, []byte(token), []byte("[redacted]")))
	}
	if callErr != nil {
		res.Error = DescribeGRError(callErr)
	} else {
		decodeTestBody(path, resp.Body, res)
	}
	msg := fmt.Sprintf("GET %s → %d in %d ms", path, res.StatusCode, res.Latency.Milliseconds())
	if res.Error != "" {
		msg = fmt.Sprintf("GET %s failed: %s", path, res.Error)
	}
	if err := t.store.AddEvent(ctx, &models.Event{ConnectionID: &id, AppID: &grant.AppID, Type: models.EventTestCall, Message: msg, Actor: actor}); err != nil {
		return nil, err
	}
	return res, nil
}

func decodeTestBody(path string, body []byte, res *TestCallResult) {
	var err error
	switch path {
	case "/from-fields":
		err = json.Unmarshal(body, &res.FromFields)
	case "/accounts":
		res.Account = &getresponse.Account{}
		err = json.Unmarshal(body, res.Account)
	case "/campaigns":
		err = json.Unmarshal(body, &res.Campaigns)
	}
	if err != nil {
		res.Error = "the answer was not the JSON GetResponse documents"
	}
}

const maxShownJSON = 64 << 10

func prettyJSON(body []byte) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		buf.Reset()
		buf.Write(body)
	}
	if buf.Len() > maxShownJSON {
		return buf.String()[:maxShownJSON] + "\n… (truncated)"
	}
	return buf.String()
}

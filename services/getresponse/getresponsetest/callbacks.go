package getresponsetest

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
)

// CallbackActions are the callback actions an account can turn on. GetResponse's
// OpenAPI document lists open, click, subscribe, unsubscribe and survey; its
// callbacks page and grconnect's notes add goal, which the fake accepts too.
var CallbackActions = []string{"open", "click", "goal", "subscribe", "unsubscribe", "survey"}

// callbackSetting is an account's callback configuration: one URL per account.
type callbackSetting struct {
	URL     string
	Actions map[string]bool
}

// Callback is an account's callback setting as the fake holds it.
type Callback struct {
	URL     string
	Actions map[string]bool // every action in CallbackActions, true when turned on
}

// Callbacks returns accountID's callback setting, and whether callbacks are on.
func (f *Fake) Callbacks(accountID string) (Callback, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.callbacks[accountID]
	if c == nil {
		return Callback{}, false
	}
	return Callback{URL: c.URL, Actions: maps.Clone(c.Actions)}, true
}

// SetCallbacks sets accountID's callbacks as the customer could in GetResponse's
// panel (an empty url turns them off).
func (f *Fake) SetCallbacks(accountID, rawURL string, actions ...string) {
	f.mu.Lock()
	if rawURL == "" {
		delete(f.callbacks, accountID)
	} else {
		set := map[string]bool{}
		for _, a := range CallbackActions {
			set[a] = slices.Contains(actions, a)
		}
		f.callbacks[accountID] = &callbackSetting{URL: rawURL, Actions: set}
	}
	f.mu.Unlock()
	f.changed()
}

// callbackJSON is the Callback schema of the OpenAPI document.
func callbackJSON(c *callbackSetting) any {
	return struct {
		URL     string          `json:"url"`
		Actions map[string]bool `json:"actions"`
	}{c.URL, c.Actions}
}

// serveCallbacks answers /v3/accounts/callbacks for accountID (the token's):
//   - GET: 200 with {url, actions}, or 404 when callbacks are off ("Callbacks are
//     disabled for the account");
//   - POST {url?, actions?}: turns callbacks on or updates them; url is required
//     while they are off and must be an absolute http(s) URL, actions is an object
//     of booleans (actions it does not name keep their value, off for a new
//     setting); 200 with the setting; a bad body is 400, code 1000;
//   - DELETE: turns them off, 204 (also when they were off).
func (f *Fake) serveCallbacks(w http.ResponseWriter, r *http.Request, accountID string) {
	switch r.Method {
	case http.MethodGet:
		f.mu.Lock()
		c := f.callbacks[accountID]
		var body any
		if c != nil {
			body = callbackJSON(&callbackSetting{URL: c.URL, Actions: maps.Clone(c.Actions)})
		}
		f.mu.Unlock()
		if body == nil {
			writeEnvelope(w, http.StatusNotFound, 1013, "Resource not found", "Callbacks are disabled for the account", []string{})
			return
		}
		writeJSON(w, http.StatusOK, body)
	case http.MethodDelete:
		f.mu.Lock()
		delete(f.callbacks, accountID)
		f.mu.Unlock()
		f.changed()
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPost:
		var in struct {
			URL     *string                    `json:"url"`
			Actions map[string]json.RawMessage `json:"actions"`
		}
		raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := json.Unmarshal(raw, &in); err != nil {
			writeValidation(w, "body", "The body is not a JSON object.")
			return
		}
		actions := map[string]bool{}
		for name, v := range in.Actions {
			var b bool
			if err := json.Unmarshal(v, &b); err != nil {
				writeValidation(w, "actions["+name+"]", "This value should be of type boolean.")
				return
			}
			if slices.Contains(CallbackActions, name) {
				actions[name] = b
			}
		}
		f.mu.Lock()
		c := f.callbacks[accountID]
		switch {
		case in.URL == nil && c == nil:
			f.mu.Unlock()
			writeValidation(w, "url", "This value is required when callbacks are not yet enabled.")
			return
		case in.URL != nil && !absoluteHTTPURL(*in.URL):
			f.mu.Unlock()
			writeValidation(w, "url", "This value is not a valid URL.")
			return
		}
		if c == nil {
			c = &callbackSetting{Actions: map[string]bool{}}
			for _, a := range CallbackActions {
				c.Actions[a] = false
			}
			f.callbacks[accountID] = c
		}
		if in.URL != nil {
			c.URL = *in.URL
		}
		maps.Copy(c.Actions, actions)
		body := callbackJSON(&callbackSetting{URL: c.URL, Actions: maps.Clone(c.Actions)})
		f.mu.Unlock()
		f.changed()
		writeJSON(w, http.StatusOK, body)
	}
}

// writeValidation writes GetResponse's 400, code 1000, about one field.
func writeValidation(w http.ResponseWriter, field, problem string) {
	writeEnvelope(w, http.StatusBadRequest, 1000,
		"General error of validation process, more details should be in context section",
		"Validation error, see context section for more information",
		map[string]string{"fieldName": field, "errorDescription": problem})
}

func absoluteHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// CallbackAccounts returns the accounts whose callbacks are on, in no order.
func (f *Fake) CallbackAccounts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.callbacks))
	for id := range f.callbacks {
		out = append(out, id)
	}
	return out
}

package getresponsetest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// APIFailure is a failure the API endpoints can be switched to.
type APIFailure int

// The API failures.
const (
	// APIOK is no failure; FailAPI(APIOK, …) clears the switch.
	APIOK APIFailure = iota
	// APIExpiredToken answers 401, code 1014, "The access token provided is
	// expired", context {"sentToken": …}. FailAPI(APIExpiredToken, -1) is the
	// persistent-1014 switch: every API call answers it until cleared, even
	// with a token refreshed a moment ago.
	APIExpiredToken
	// APIRateLimited answers 429, code 1015, context {"currentLimit":30000,
	// "timeToReset":"100 seconds"}, Retry-After: 1, X-RateLimit-Reset: 100
	// seconds, X-RateLimit-Remaining: 0 (the two windows' headers mixed).
	APIRateLimited
	// APIServerError answers 500, code 1.
	APIServerError
	// APIHang never answers: it blocks until the request ends or the Fake closes.
	APIHang
	// APIMalformedJSON answers 200 with truncated JSON.
	APIMalformedJSON
	// APIBlocked answers 403, code 1017 (API permanently blocked).
	APIBlocked
	// APIIPBlocked answers 403, code 1018 (IP blocked).
	APIIPBlocked
	// APIContextArray answers 400, code 1000, with "context": [].
	APIContextArray
	// APIContextStrings answers 400, code 1000, with a context array of strings.
	APIContextStrings
	// APIBadGateway answers 502 with an HTML body, as a proxy would.
	APIBadGateway
	// APITemporarilyBlocked answers 403, code 1016.
	APITemporarilyBlocked
	// APIMaintenance answers 403, code 1019.
	APIMaintenance
	// APIInvalidHeaders answers 400, code 1021.
	APIInvalidHeaders
	// APIMissingPermissions answers 403, code 1023.
	APIMissingPermissions
	// APIDomainNotFound answers 404, code 1024.
	APIDomainNotFound
	// APIXDomain answers 401, code 1014, context {"authenticationType":"x-domain"}.
	APIXDomain
	// APIRateLimitedPerSecond answers a per-second 429 as reported live:
	// code 1015, Retry-After: 1, X-RateLimit-Limit: 80,
	// X-RateLimit-Remaining: 0, X-RateLimit-Reset: 1 seconds.
	APIRateLimitedPerSecond
	// APIRateLimitedWindow answers the 10-minute window's 429: code 1015, no
	// Retry-After, X-RateLimit-Limit: 30000, X-RateLimit-Remaining: 0,
	// X-RateLimit-Reset: 100 seconds.
	APIRateLimitedWindow
	// APIRedirect answers 307 Temporary Redirect to <fake>/moved/v3/<path>,
	// which counts EndpointRedirectTarget if anything follows it.
	APIRedirect
	// APIUnavailable answers 503, code 1, with Retry-After: 60.
	APIUnavailable
	// APISlow answers normally after Options.SlowDelay (or when the request
	// ends or the Fake closes, without an answer).
	APISlow
)

// FailAPI makes the next n API calls fail with mode (n < 0: until cleared;
// n == 0 or APIOK: clear). It replaces any earlier API switch.
func (f *Fake) FailAPI(mode APIFailure, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apiFail = failure[APIFailure]{mode: mode, n: n}
}

// Messages of the 1014 answers.
const (
	msgUnauthenticated = "Unable to authenticate request. Check credentials or authentication method details"
	msgExpired         = "The access token provided is expired"
	descAuth           = "Problem during authentication process, check headers!"
)

// serveAPI answers the API calls. In order: the counters; the account's
// parallel slot; latency; failure switches; the account's outage; X-Domain;
// the access token; the account's rate limits; the answer.
func (f *Fake) serveAPI(w http.ResponseWriter, r *http.Request, path string) {
	path = strings.TrimSuffix(path, "/")
	var ep Endpoint
	switch {
	case r.Method == http.MethodGet && path == "/accounts":
		ep = EndpointAccounts
	case r.Method == http.MethodGet && path == "/from-fields":
		ep = EndpointFromFields
	case r.Method == http.MethodGet && path == "/campaigns":
		ep = EndpointCampaigns
	case path == "/accounts/callbacks" && (r.Method == http.MethodGet || r.Method == http.MethodPost || r.Method == http.MethodDelete):
		ep = EndpointCallbacks
	default:
		f.inc(EndpointOther)
		setRateHeaders(w, f.peekRate(""))
		writeEnvelope(w, http.StatusNotFound, 1013, "Resource not found",
			"Resource not found", map[string]string{"path": path})
		return
	}
	f.inc(ep)

	sent, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sent = strings.TrimSpace(sent)
	f.mu.Lock()
	var accountID string
	if tok, ok := f.access[sent]; ok {
		accountID = tok.accountID
		f.countDomainLocked(r, tok.clientID, accountID)
	}
	f.mu.Unlock()
	if accountID != "" {
		if !f.enter(w, accountID) {
			return
		}
		defer f.leave(accountID)
	}

	f.mu.Lock()
	var mode APIFailure
	var failing bool
	if accountID != "" {
		mode, failing = f.apiFailFor[accountID].take()
	}
	if !failing {
		mode, failing = f.apiFail.take()
	}
	latency := f.apiLatency
	f.mu.Unlock()
	if !f.wait(r.Context(), latency) {
		return
	}
	if failing && mode == APISlow {
		if !f.wait(r.Context(), f.opts.SlowDelay) {
			return
		}
		failing = false
	}
	if failing {
		f.writeAPIFailure(w, r, mode, accountID, path)
		return
	}
	if !f.checkOutage(w, accountID, false) {
		return
	}

	f.mu.Lock()
	domainOK := f.domainOKLocked(r, accountID)
	tok, ok := f.access[sent]
	var expired bool
	var acct Account
	if ok {
		expired = tok.expired || !f.now().Before(tok.expiry)
		acct, ok = f.accountLocked(tok.accountID)
		acct = cloneAccount(acct)
	}
	f.mu.Unlock()
	switch {
	case !domainOK:
		f.stat(StatRefusedDomain)
		setRateHeaders(w, f.peekRate(accountID))
		writeDomainError(w)
		return
	case !ok:
		setRateHeaders(w, f.peekRate(""))
		writeEnvelope(w, http.StatusUnauthorized, 1014, descAuth, msgUnauthenticated,
			map[string]string{"authenticationType": "auth_token"})
		return
	case expired:
		setRateHeaders(w, f.peekRate(accountID))
		writeEnvelope(w, http.StatusUnauthorized, 1014, descAuth, msgExpired, map[string]string{"sentToken": sent})
		return
	}
	if !f.consume(w, acct.AccountID) {
		return
	}
	// An armed outage (a consent outcome) starts after this call.
	f.startArmedOutage(acct.AccountID)

	base := f.baseURL(r) + "/v3"
	q := r.URL.Query()
	switch ep {
	case EndpointAccounts:
		writeFields(w, accountJSON(acct, base), q.Get("fields"), "accountId")
	case EndpointFromFields:
		items := make([]any, len(acct.FromFields))
		for i, ff := range acct.FromFields {
			items[i] = fromFieldJSON(ff, base)
		}
		writeList(w, items, q, "fromFieldId")
	case EndpointCampaigns:
		items := make([]any, len(acct.Campaigns))
		for i, c := range acct.Campaigns {
			items[i] = campaignJSON(c, base)
		}
		writeList(w, items, q, "campaignId")
	case EndpointCallbacks:
		f.serveCallbacks(w, r, acct.AccountID)
	}
}

// startArmedOutage starts accountID's armed outage, if any.
func (f *Fake) startArmedOutage(accountID string) {
	now := f.now()
	f.mu.Lock()
	_, _, started := f.outageLocked(accountID, now, true)
	f.mu.Unlock()
	if started {
		f.changed()
	}
}

func (f *Fake) writeAPIFailure(w http.ResponseWriter, r *http.Request, mode APIFailure, accountID, path string) {
	switch mode {
	case APIRateLimited:
		writeRateLimited(w, rateMixed)
		return
	case APIRateLimitedPerSecond:
		writeRateLimited(w, ratePerSecond)
		return
	case APIRateLimitedWindow:
		writeRateLimited(w, rateWindow)
		return
	}
	setRateHeaders(w, f.peekRate(accountID))
	switch mode {
	case APIExpiredToken:
		sent, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		writeEnvelope(w, http.StatusUnauthorized, 1014, descAuth, msgExpired, map[string]string{"sentToken": sent})
	case APIXDomain:
		writeDomainError(w)
	case APIServerError:
		writeEnvelope(w, http.StatusInternalServerError, 1, "Internal error",
			"Internal error, please try again later", []string{})
	case APIUnavailable:
		writeOutage(w, time.Minute)
	case APIHang:
		f.hang(w, r)
	case APIMalformedJSON:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`[{"fromFieldId":"TTzW","name":"John`))
	case APIBlocked:
		writeCodeAnswer(w, 1017)
	case APIIPBlocked:
		writeCodeAnswer(w, 1018)
	case APITemporarilyBlocked:
		writeCodeAnswer(w, 1016)
	case APIMaintenance:
		writeCodeAnswer(w, 1019)
	case APIInvalidHeaders:
		writeCodeAnswer(w, 1021)
	case APIMissingPermissions:
		writeCodeAnswer(w, 1023)
	case APIDomainNotFound:
		writeCodeAnswer(w, 1024)
	case APIContextArray:
		writeEnvelope(w, http.StatusBadRequest, 1000,
			"General error of validation process, more details should be in context section",
			"Validation error, see context section for more information", []string{})
	case APIContextStrings:
		writeEnvelope(w, http.StatusBadRequest, 1000,
			"General error of validation process, more details should be in context section",
			"Validation error, see context section for more information",
			[]string{"perPage: This value should be 1000 or less."})
	case APIBadGateway:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>\n"))
	case APIRedirect:
		f.writeRedirect(w, r, "/v3"+path)
	}
}

// writeFields writes one object, narrowed to ?fields= (the id always stays).
func writeFields(w http.ResponseWriter, v any, fields, idField string) {
	if fields == "" {
		writeJSON(w, http.StatusOK, v)
		return
	}
	writeJSON(w, http.StatusOK, narrow(v, fields, idField))
}

func narrow(v any, fields, idField string) any {
	raw, _ := json.Marshal(v)
	var all map[string]json.RawMessage
	_ = json.Unmarshal(raw, &all)
	keep := map[string]json.RawMessage{idField: all[idField]}
	for _, name := range strings.Split(fields, ",") {
		name = strings.TrimSpace(name)
		if val, ok := all[name]; ok {
			keep[name] = val
		}
	}
	return keep
}

// writeList writes one page of items with the paging headers; page and
// perPage (1..1000) are validated as GetResponse does (400, code 1000).
func writeList(w http.ResponseWriter, items []any, q map[string][]string, idField string) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	page, perPage := 1, 100
	var bad []string
	if s := get("page"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			bad = append(bad, "page: This value should be 1 or more.")
		}
		page = n
	}
	if s := get("perPage"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			bad = append(bad, "perPage: This value should be between 1 and 1000.")
		}
		perPage = n
	}
	if len(bad) > 0 {
		writeEnvelope(w, http.StatusBadRequest, 1000,
			"General error of validation process, more details should be in context section",
			"Validation error, see context section for more information", bad)
		return
	}
	total := len(items)
	pages := (total + perPage - 1) / perPage
	from := min((page-1)*perPage, total)
	to := min(from+perPage, total)
	out := items[from:to]
	if fields := get("fields"); fields != "" {
		for i := range out {
			out[i] = narrow(out[i], fields, idField)
		}
	}
	h := w.Header()
	h.Set("TotalCount", strconv.Itoa(total))
	h.Set("TotalPages", strconv.Itoa(pages))
	h.Set("CurrentPage", strconv.Itoa(page))
	writeJSON(w, http.StatusOK, out)
}

// Wire forms, in the field order of GetResponse's examples.

type countryCodeJSON struct {
	CountryCodeID string `json:"countryCodeId"`
	CountryCode   string `json:"countryCode"`
}

type industryTagJSON struct {
	IndustryTagID string `json:"industryTagId"`
}

type timeZoneJSON struct {
	Name   string `json:"name"`
	Offset string `json:"offset"`
}

func accountJSON(a Account, base string) any {
	return struct {
		AccountID         string          `json:"accountId"`
		Email             string          `json:"email"`
		CountryCode       countryCodeJSON `json:"countryCode"`
		IndustryTag       industryTagJSON `json:"industryTag"`
		TimeZone          timeZoneJSON    `json:"timeZone"`
		Href              string          `json:"href"`
		FirstName         string          `json:"firstName"`
		LastName          string          `json:"lastName"`
		CompanyName       string          `json:"companyName"`
		Phone             string          `json:"phone"`
		State             string          `json:"state"`
		City              string          `json:"city"`
		Street            string          `json:"street"`
		ZipCode           string          `json:"zipCode"`
		NumberOfEmployees string          `json:"numberOfEmployees"`
		TimeFormat        string          `json:"timeFormat"`
	}{
		a.AccountID, a.Email,
		countryCodeJSON{a.CountryCodeID, a.CountryCode},
		industryTagJSON{a.IndustryTagID},
		timeZoneJSON{a.TimeZoneName, a.TimeZoneOffset},
		base + "/accounts",
		a.FirstName, a.LastName, a.CompanyName, a.Phone, a.State, a.City, a.Street, a.ZipCode,
		a.NumberOfEmployees, a.TimeFormat,
	}
}

func fromFieldJSON(ff FromField, base string) any {
	var status *string
	if ff.DomainStatus != "" {
		status = &ff.DomainStatus
	}
	return struct {
		FromFieldID    string  `json:"fromFieldId"`
		Href           string  `json:"href"`
		Email          string  `json:"email"`
		RewrittenEmail *string `json:"rewrittenEmail"`
		Name           string  `json:"name"`
		IsActive       string  `json:"isActive"`
		IsDefault      string  `json:"isDefault"`
		CreatedOn      string  `json:"createdOn"`
		Domain         struct {
			Status      *string `json:"status"`
			DKIMWarning *string `json:"DKIMWarning"`
		} `json:"domain"`
	}{
		FromFieldID: ff.FromFieldID, Href: base + "/from-fields/" + ff.FromFieldID,
		Email: ff.Email, RewrittenEmail: ff.RewrittenEmail, Name: ff.Name,
		IsActive: strconv.FormatBool(ff.IsActive), IsDefault: strconv.FormatBool(ff.IsDefault),
		CreatedOn: formatTime(ff.CreatedOn),
		Domain: struct {
			Status      *string `json:"status"`
			DKIMWarning *string `json:"DKIMWarning"`
		}{status, ff.DKIMWarning},
	}
}

func campaignJSON(c Campaign, base string) any {
	return struct {
		Description  string `json:"description"`
		CampaignID   string `json:"campaignId"`
		Name         string `json:"name"`
		TechName     string `json:"techName"`
		LanguageCode string `json:"languageCode"`
		IsDefault    string `json:"isDefault"`
		CreatedOn    string `json:"createdOn"`
		Href         string `json:"href"`
	}{c.Description, c.CampaignID, c.Name, c.TechName, c.LanguageCode,
		strconv.FormatBool(c.IsDefault), formatTime(c.CreatedOn), base + "/campaigns/" + c.CampaignID}
}

// formatTime writes GetResponse's time form, 2017-03-13T19:32:52+0000.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05-0700")
}

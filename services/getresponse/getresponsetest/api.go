package getresponsetest

import (
	"encoding/json"
	"math"
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
	// expired", context {"sentToken": …}.
	APIExpiredToken
	// APIRateLimited answers 429, code 1015, context {"currentLimit":30000,
	// "timeToReset":"100 seconds"}, Retry-After: 1, X-RateLimit-Reset: 100 seconds.
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
	default:
		f.inc(EndpointOther)
		f.setRateHeaders(w, "", false)
		writeEnvelope(w, http.StatusNotFound, 1013, "Resource not found",
			"Resource not found", map[string]string{"path": path})
		return
	}
	f.inc(ep)

	f.mu.Lock()
	mode, failing := f.apiFail.take()
	latency := f.apiLatency
	f.mu.Unlock()
	if !f.wait(r.Context(), latency) {
		return
	}
	if failing {
		f.writeAPIFailure(w, r, mode)
		return
	}
	if !f.domainOK(r) {
		f.setRateHeaders(w, "", false)
		writeDomainError(w)
		return
	}

	sent, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sent = strings.TrimSpace(sent)
	f.mu.Lock()
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
	case !ok:
		f.setRateHeaders(w, "", false)
		writeEnvelope(w, http.StatusUnauthorized, 1014, descAuth, msgUnauthenticated,
			map[string]string{"authenticationType": "auth_token"})
		return
	case expired:
		f.setRateHeaders(w, "", false)
		writeEnvelope(w, http.StatusUnauthorized, 1014, descAuth, msgExpired, map[string]string{"sentToken": sent})
		return
	}
	if !f.setRateHeaders(w, acct.AccountID, true) {
		writeQuotaEnvelope(w)
		return
	}

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
	}
}

// setRateHeaders writes the X-RateLimit-* headers of accountID's window,
// consuming one call if consume; it reports false when the quota is used up.
// accountID "" (unauthenticated answers) shows a fresh window.
func (f *Fake) setRateHeaders(w http.ResponseWriter, accountID string, consume bool) bool {
	now := f.now()
	f.mu.Lock()
	b := f.buckets[accountID]
	if b == nil || now.Sub(b.start) >= RateLimitWindow || now.Before(b.start) {
		b = &bucket{start: now}
		if accountID != "" {
			f.buckets[accountID] = b
		}
	}
	allowed := b.used < RateLimitCalls
	if consume && allowed {
		b.used++
	}
	remaining := RateLimitCalls - b.used
	reset := b.start.Add(RateLimitWindow).Sub(now)
	f.mu.Unlock()

	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(RateLimitCalls))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.Itoa(int(math.Ceil(reset.Seconds())))+" seconds")
	return allowed
}

func (f *Fake) writeAPIFailure(w http.ResponseWriter, r *http.Request, mode APIFailure) {
	if mode != APIRateLimited {
		f.setRateHeaders(w, "", false)
	}
	switch mode {
	case APIExpiredToken:
		sent, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		writeEnvelope(w, http.StatusUnauthorized, 1014, descAuth, msgExpired, map[string]string{"sentToken": sent})
	case APIRateLimited:
		h := w.Header()
		h.Set("Retry-After", "1")
		h.Set("X-RateLimit-Limit", strconv.Itoa(RateLimitCalls))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", "100 seconds")
		writeQuotaEnvelope(w)
	case APIServerError:
		writeEnvelope(w, http.StatusInternalServerError, 1, "Internal error",
			"Internal error, please try again later", []string{})
	case APIHang:
		f.wait(r.Context(), -1)
		if r.Context().Err() != nil {
			return
		}
		writeEnvelope(w, http.StatusServiceUnavailable, 1, "Internal error", "Server is shutting down", []string{})
	case APIMalformedJSON:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`[{"fromFieldId":"TTzW","name":"John`))
	case APIBlocked:
		writeEnvelope(w, http.StatusForbidden, 1017, "API permanently blocked",
			"Your access to the API has been permanently blocked", []string{})
	case APIIPBlocked:
		writeEnvelope(w, http.StatusForbidden, 1018, "IP address blocked",
			"Your IP address has been blocked", []string{})
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
	}
}

// writeEnvelope writes GetResponse's error envelope.
func writeEnvelope(w http.ResponseWriter, status, code int, codeDescription, message string, context any) {
	writeJSON(w, status, struct {
		HTTPStatus      int    `json:"httpStatus"`
		Code            int    `json:"code"`
		CodeDescription string `json:"codeDescription"`
		Message         string `json:"message"`
		MoreInfo        string `json:"moreInfo"`
		Context         any    `json:"context"`
		UUID            string `json:"uuid"`
	}{status, code, codeDescription, message,
		"https://apidocs.getresponse.com/en/v3/errors/" + strconv.Itoa(code), context, newUUID()})
}

func writeQuotaEnvelope(w http.ResponseWriter) {
	writeEnvelope(w, http.StatusTooManyRequests, 1015,
		"Too many request to API, quota reached, please wait till next quota window",
		"You have reached your requests limit for this time window, please wait...",
		map[string]any{"currentLimit": RateLimitCalls, "timeToReset": "100 seconds"})
}

func writeDomainError(w http.ResponseWriter) {
	writeEnvelope(w, http.StatusUnauthorized, 1014, descAuth, msgUnauthenticated,
		map[string]string{"authenticationType": "x-domain"})
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

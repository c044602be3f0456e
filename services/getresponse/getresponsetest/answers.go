package getresponsetest

import (
	"net/http"
	"strconv"
	"time"
)

// Canned answers shared by the token endpoint and the API.

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

// codeAnswers are the envelopes of GetResponse's blocks and configuration
// errors. The statuses of 1021 and 1024 are not documented (see the
// package comment).
var codeAnswers = map[int]struct {
	status          int
	codeDescription string
	message         string
}{
	1016: {http.StatusForbidden, "API temporarily blocked", "Your access to the API has been temporarily blocked"},
	1017: {http.StatusForbidden, "API permanently blocked", "Your access to the API has been permanently blocked"},
	1018: {http.StatusForbidden, "IP address blocked", "Your IP address has been blocked"},
	1019: {http.StatusForbidden, "Maintenance", "The API is under maintenance, please try again later"},
	1021: {http.StatusBadRequest, "Invalid headers", "The request headers are invalid"},
	1023: {http.StatusForbidden, "Missing permissions", "You do not have the permissions needed for this action"},
	1024: {http.StatusNotFound, "Domain not found", "The domain given in X-Domain was not found"},
}

// writeCodeAnswer writes the envelope of one of codeAnswers.
func writeCodeAnswer(w http.ResponseWriter, code int) {
	a := codeAnswers[code]
	writeEnvelope(w, a.status, code, a.codeDescription, a.message, []string{})
}

// rateVariant names a canned 429.
type rateVariant int

const (
	// rateMixed: Retry-After 1 with the 10-minute window's headers.
	rateMixed rateVariant = iota
	// ratePerSecond: the per-second refusal as reported live.
	ratePerSecond
	// rateWindow: the 10-minute window's refusal, no Retry-After.
	rateWindow
)

// writeRateLimited writes a canned 429 with code 1015.
func writeRateLimited(w http.ResponseWriter, v rateVariant) {
	window := 100 * time.Second
	switch v {
	case rateMixed:
		setRateHeaders(w, rateAnswer{limit: RateLimitCalls, reset: window, retryAfter: 1})
		writeQuotaEnvelope(w, RateLimitCalls, window)
	case ratePerSecond:
		setRateHeaders(w, rateAnswer{limit: PerSecondLimit, reset: time.Second, retryAfter: 1})
		writeQuotaEnvelope(w, PerSecondLimit, time.Second)
	case rateWindow:
		setRateHeaders(w, rateAnswer{limit: RateLimitCalls, reset: window})
		writeQuotaEnvelope(w, RateLimitCalls, window)
	}
}

// writeRedirect answers 307 to path under the fake's /moved/, where any
// request counts EndpointRedirectTarget.
func (f *Fake) writeRedirect(w http.ResponseWriter, r *http.Request, path string) {
	w.Header().Set("Location", f.baseURL(r)+movedPrefix+path)
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// hang blocks until the request ends or the Fake closes; on close it answers 503.
func (f *Fake) hang(w http.ResponseWriter, r *http.Request) {
	f.wait(r.Context(), -1)
	if r.Context().Err() != nil {
		return
	}
	writeEnvelope(w, http.StatusServiceUnavailable, 1, "Internal error", "Server is shutting down", []string{})
}

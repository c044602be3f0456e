package services

import (
	"net/http"

	"github.com/grconnect/grconnect/services/getresponse"
)

// ProblemKind says why a connect flow could not complete. It also goes to the
// operator's site (the return URL's error parameter, the popup's result).
type ProblemKind string

// The kinds of connect-flow problems; problemKinds holds their properties.
const (
	ProblemStateMissing    ProblemKind = "state_missing"
	ProblemStateUnknown    ProblemKind = "state_unknown"
	ProblemStateExpired    ProblemKind = "state_expired"
	ProblemStateUsed       ProblemKind = "state_used"
	ProblemForeignBrowser  ProblemKind = "foreign_browser"
	ProblemAccessDenied    ProblemKind = "access_denied"
	ProblemProviderError   ProblemKind = "provider_error"
	ProblemNoCode          ProblemKind = "no_code"
	ProblemExchangeFailed  ProblemKind = "exchange_failed"
	ProblemAccountFailed   ProblemKind = "account_failed"
	ProblemAccountMismatch ProblemKind = "account_mismatch"
	ProblemLinkUsed        ProblemKind = "link_used"
	ProblemLinkRevoked     ProblemKind = "link_revoked"
	ProblemAccountTaken    ProblemKind = "account_taken"
	// ProblemAppUnavailable: GetResponse refused the operator's app (its
	// credentials or configuration); the operator has been told.
	ProblemAppUnavailable ProblemKind = "app_unavailable"
)

// ProblemInfo is what a kind of problem means for the customer's page.
type ProblemInfo struct {
	// Status is the page's HTTP status.
	Status int
	// Heading is the page's title.
	Heading string
	// Retry says whether the customer is offered to try again (the connect link,
	// when it can still be used): only when trying again can work.
	Retry bool
	// Acts says who can fix it: the customer (trying again, another account),
	// the operator (a new link, the app's settings) or nobody but time.
	Acts getresponse.Actor
}

// problemKinds is the one table of the kinds' properties.
var problemKinds = map[ProblemKind]ProblemInfo{
	ProblemStateMissing:    {http.StatusBadRequest, "This connection attempt is not valid", false, getresponse.ActorCustomer},
	ProblemStateUnknown:    {http.StatusBadRequest, "This connection attempt is not valid", false, getresponse.ActorCustomer},
	ProblemStateExpired:    {http.StatusBadRequest, "This attempt expired", true, getresponse.ActorCustomer},
	ProblemStateUsed:       {http.StatusBadRequest, "Already completed", true, getresponse.ActorCustomer},
	ProblemForeignBrowser:  {http.StatusForbidden, "Started in another browser", true, getresponse.ActorCustomer},
	ProblemAccessDenied:    {http.StatusBadRequest, "Access was not granted", true, getresponse.ActorCustomer},
	ProblemProviderError:   {http.StatusBadRequest, "GetResponse did not grant access", true, getresponse.ActorCustomer},
	ProblemNoCode:          {http.StatusBadRequest, "GetResponse did not grant access", true, getresponse.ActorCustomer},
	ProblemExchangeFailed:  {http.StatusBadGateway, "GetResponse did not complete the connection", true, getresponse.ActorWait},
	ProblemAccountFailed:   {http.StatusBadGateway, "GetResponse did not complete the connection", true, getresponse.ActorWait},
	ProblemAccountMismatch: {http.StatusBadRequest, "A different account", true, getresponse.ActorCustomer},
	ProblemLinkUsed:        {http.StatusGone, "This link was already used", false, getresponse.ActorOperator},
	ProblemLinkRevoked:     {http.StatusGone, "This link was withdrawn", false, getresponse.ActorOperator},
	ProblemAccountTaken:    {http.StatusConflict, "This account is already connected elsewhere", true, getresponse.ActorCustomer},
	ProblemAppUnavailable:  {http.StatusServiceUnavailable, "This integration is unavailable for now", false, getresponse.ActorOperator},
}

// OperatorActs reports whether only the operator can fix the problem: the
// customer's page then points to the app's support contact.
func (i ProblemInfo) OperatorActs() bool { return i.Acts == getresponse.ActorOperator }

// Info returns the kind's properties (those of state_unknown for a kind not in
// the table).
func (k ProblemKind) Info() ProblemInfo {
	if info, ok := problemKinds[k]; ok {
		return info
	}
	return problemKinds[ProblemStateUnknown]
}

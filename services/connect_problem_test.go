package services_test

import (
	"testing"

	"github.com/grconnect/grconnect/services"
)

// TestProblemKindsTable: every kind of connect-flow problem has a page status and
// a heading, and no kind the operator must fix offers the customer a retry.
func TestProblemKindsTable(t *testing.T) {
	kinds := []services.ProblemKind{
		services.ProblemStateMissing, services.ProblemStateUnknown, services.ProblemStateExpired, services.ProblemStateUsed,
		services.ProblemForeignBrowser, services.ProblemAccessDenied, services.ProblemProviderError, services.ProblemNoCode,
		services.ProblemExchangeFailed, services.ProblemAccountFailed, services.ProblemAccountMismatch, services.ProblemLinkUsed,
		services.ProblemLinkRevoked, services.ProblemAccountTaken, services.ProblemAppUnavailable,
	}
	for _, k := range kinds {
		info := k.Info()
		if info.Status < 400 || info.Status > 599 || info.Heading == "" || info.Acts == "" {
			t.Errorf("%s: %+v", k, info)
		}
		if info.OperatorActs() && info.Retry {
			t.Errorf("%s is the operator's to fix, yet offers the customer a retry", k)
		}
	}
	if info := services.ProblemAppUnavailable.Info(); !info.OperatorActs() || info.Retry || info.Status != 503 {
		t.Errorf("app_unavailable = %+v, want the operator's, no retry, 503", info)
	}
	for _, k := range []services.ProblemKind{services.ProblemAccessDenied, services.ProblemAccountMismatch, services.ProblemStateExpired} {
		if !k.Info().Retry {
			t.Errorf("%s is the customer's: it must keep its retry", k)
		}
	}
	if unknown := services.ProblemKind("nonsense").Info(); unknown != services.ProblemStateUnknown.Info() {
		t.Errorf("an unknown kind = %+v", unknown)
	}
}

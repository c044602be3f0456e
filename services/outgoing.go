package services

import (
	"context"
	"errors"
	"net"

	"github.com/grconnect/grconnect/services/getresponse"
	"github.com/grconnect/grconnect/services/infra/netguard"
)

// CallFailure says why a call to GetResponse got no answer, in words fit for an
// answer to a caller or a page: never a host, address or port, which would make
// grconnect a port scanner of its own network (the log keeps them). An error that
// is not about the network is grconnect's own text and said as it is.
func CallFailure(err error) string {
	var (
		netErr net.Error
		ne     *getresponse.NetworkError
		te     *getresponse.TokenError
	)
	if b, ok := netguard.Blocked(err); ok {
		return "grconnect refused to connect: the app's GetResponse URL leads to " + b.Public()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "the request was cancelled"
	case errors.As(err, &ne), errors.As(err, &netErr), errors.As(err, &te) && te.HTTPStatus == 0 && te.Err != nil:
		return "the connection failed or broke off"
	}
	return err.Error()
}

// FailureMessage says what went wrong with a request to GetResponse that got no
// usable answer, for the API's error body: a refresh's own message (which names no
// address), or CallFailure's words.
func FailureMessage(err error) string {
	var (
		re *RefreshError
		ue *UnavailableError
	)
	switch {
	case errors.As(err, &re):
		return re.Message
	case errors.As(err, &ue):
		return "GetResponse did not answer: " + CallFailure(ue.Err)
	}
	return "GetResponse could not be reached: " + CallFailure(err)
}

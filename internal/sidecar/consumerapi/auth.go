package consumerapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/recbuf/recbuf/internal/buffer"
)

// Operation is what a request does to a record, as an Authorizer sees it.
type Operation int

const (
	// OpConsume reads without removing: stream (but of a Mailbox),
	// latest, info, list.
	OpConsume Operation = iota
	// OpTake removes the Mailbox's pending value: take, and a stream of a
	// Mailbox.
	OpTake
)

func (o Operation) String() string {
	if o == OpTake {
		return "take"
	}
	return "consume"
}

// Errors an Authorizer wraps to refuse a request: 401 (with
// WWW-Authenticate: Bearer) and 403. Any other error is a failure to
// decide, 503 with Retry-After.
var (
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrForbidden       = errors.New("forbidden")
)

// Authorizer decides whether the bearer of token may do op on the record
// named record (a name from the request's path: it may name no record
// served). token is "" when the request carries none. It returns nil to
// let the request in. Its errors are sent to the client: they must not
// carry the token. It must be safe for concurrent use.
type Authorizer interface {
	Authorize(ctx context.Context, token, record string, op Operation) error
}

// consumes and takes are the operations of reading and of taking,
// whatever the record.
func consumes(*record) Operation { return OpConsume }
func takes(*record) Operation    { return OpTake }

// streamOp is the operation of a stream of rec: a stream of a Mailbox
// takes each value it delivers (readers of a Mailbox compete for its
// values), so it needs what take needs; of another record it reads.
func streamOp(rec *record) Operation {
	if rec != nil && rec.Buffer.Type() == buffer.TypeMailbox {
		return OpTake
	}
	return OpConsume
}

// authFailureLogInterval is the least time between two log lines about
// requests the authorizer could not decide.
const authFailureLogInterval = 10 * time.Second

// authRetryAfter is the Retry-After of a request that could not be
// authorized because the authorizer failed (the API server did not
// answer).
const authRetryAfter = 5

// bearerToken is the token of the request's Authorization: Bearer header,
// "" without one. The scheme's case does not matter (RFC 9110).
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// authorize asks the Authorizer about the request, and when it refuses
// writes the answer and reports false. Without an Authorizer every request
// is let in.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, record string, op Operation) bool {
	if s.cfg.Authorizer == nil {
		return true
	}
	err := s.cfg.Authorizer.Authorize(r.Context(), bearerToken(r), record, op)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="recbuf"`)
		writeError(w, http.StatusUnauthorized, err.Error())
	case errors.Is(err, ErrForbidden):
		writeError(w, http.StatusForbidden, err.Error())
	default:
		// At most one line per authFailureLogInterval, with a count: while
		// the API server is down every request fails.
		if n, ok := s.authFailures.Allow(); ok {
			s.log.Warn("Consumers not authorized: the authorizer failed", "requests", n, "record", record, "operation", op.String(), "error", err.Error())
		}
		w.Header().Set("Retry-After", strconv.Itoa(authRetryAfter))
		writeError(w, http.StatusServiceUnavailable, "cannot authorize the request now: "+err.Error())
	}
	return false
}

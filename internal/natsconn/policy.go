package natsconn

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Defaults and fixed settings of a Policy.
const (
	// DefaultReconnectWait is the delay before the first reconnection
	// attempt when Policy.ReconnectWait is unset.
	DefaultReconnectWait = 250 * time.Millisecond
	// DefaultMaxReconnectWait caps the doubling delay when
	// Policy.MaxReconnectWait is unset.
	DefaultMaxReconnectWait = 5 * time.Second
	// PingInterval is how often an idle connection pings the server.
	PingInterval = 20 * time.Second
	// MaxPingsOutstanding is how many pings may go unanswered before the
	// connection counts as stale and reconnects: a dead server is noticed
	// within PingInterval × (MaxPingsOutstanding+1), about a minute.
	MaxPingsOutstanding = 3
)

// jitterDivisor bounds the random extra delay to 1/jitterDivisor of the
// delay (25%).
const jitterDivisor = 4

// Policy is how recbuf's processes connect to NATS: the manager's status
// collector and every buffer process use it, so that they reconnect, back
// off and log connection changes the same way.
//
// A connection built with a Policy retries forever: the first connection
// is retried in the background when no server is reachable, reconnection
// attempts never stop, and a server that refuses the credentials is
// retried too (a rotated Secret then takes effect without a restart).
// Between attempts it waits ReconnectWait, doubled after each failed
// attempt up to MaxReconnectWait, plus up to 25% random jitter so that
// many clients do not reconnect in lockstep after a server restart.
//
// The zero value is usable; a Policy is a value and safe to copy.
type Policy struct {
	// Name is the client name the server lists the connection under
	// (connz), such as "recbuf-manager".
	Name string
	// ReconnectWait is the first delay between attempts (<= 0:
	// DefaultReconnectWait). MaxReconnectWait caps the doubling (below
	// ReconnectWait: the larger of DefaultMaxReconnectWait and
	// ReconnectWait).
	ReconnectWait, MaxReconnectWait time.Duration
	// Logger receives the connection changes (nil: slog.Default()). Logged
	// URLs carry no user information (see RedactURL); credentials are never
	// logged.
	Logger *slog.Logger
	// Hooks are the caller's own reactions to connection changes.
	Hooks Hooks
}

// Hooks are a caller's reactions to connection changes. nats.go calls
// them on its callback goroutine, one at a time and in order, after the
// Policy has logged the change. Every field may be nil.
type Hooks struct {
	// Connected runs when the connection comes up: the first time and
	// after every reconnection (subscriptions have been sent again by then).
	Connected func(nc *nats.Conn)
	// Disconnected runs when the connection goes down; nats.go then tries
	// to reconnect, unless the connection was closed.
	Disconnected func(nc *nats.Conn)
	// Closed runs once the connection is closed for good.
	Closed func(nc *nats.Conn)
	// SlowConsumer runs when nats.go discards messages of sub because its
	// pending queue is full. With it set, logging that is the hook's job;
	// without it, the Policy logs a warning.
	SlowConsumer func(sub *nats.Subscription)
}

// Options returns the nats.go options of the policy: client name, retry
// and reconnect behaviour, pings, and the logging handlers that call the
// hooks. Credentials are not part of it: see CredentialOptions.
func (p Policy) Options() []nats.Option {
	p = p.withDefaults()
	log, h := p.Logger, p.Hooks
	return []nats.Option{
		nats.Name(p.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		// nats.go otherwise closes the connection for good after the same
		// authorization error twice, which "retry forever" rules out.
		nats.IgnoreAuthErrorAbort(),
		nats.CustomReconnectDelay(Backoff(p.ReconnectWait, p.MaxReconnectWait)),
		nats.PingInterval(PingInterval),
		nats.MaxPingsOutstanding(MaxPingsOutstanding),
		nats.ConnectHandler(func(nc *nats.Conn) {
			log.Info("NATS connected", "url", connectedURL(nc))
			call(h.Connected, nc)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS reconnected", "url", connectedURL(nc), "reconnects", nc.Stats().Reconnects)
			call(h.Connected, nc)
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "error", err.Error())
			} else {
				// No error: the client itself is closing the connection.
				log.Debug("NATS disconnected")
			}
			call(h.Disconnected, nc)
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Debug("NATS reconnection attempt failed", "error", err.Error())
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if err := nc.LastError(); err != nil {
				log.Info("NATS connection closed", "error", err.Error())
			} else {
				log.Info("NATS connection closed")
			}
			call(h.Closed, nc)
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) && sub != nil && h.SlowConsumer != nil {
				h.SlowConsumer(sub)
				return
			}
			if sub != nil {
				log.Warn("NATS error", "error", err.Error(), "subject", sub.Subject)
			} else {
				log.Warn("NATS error", "error", err.Error())
			}
		}),
	}
}

// Connect connects to servers (one server URL or a comma-separated list) with
// extra options (such as CredentialOptions) followed by the policy's own,
// so that extra options cannot weaken the policy. It returns at once when
// no server is reachable yet: the connection then keeps trying in the
// background. Its error is nats.go's, for options it refuses (such as a
// malformed URL), with any URL in it redacted.
func (p Policy) Connect(servers string, extra ...nats.Option) (*nats.Conn, error) {
	p = p.withDefaults()
	nc, err := nats.Connect(servers, slices.Concat(extra, p.Options())...)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = RedactURL(ue.URL)
		}
		return nil, err
	}
	if !nc.IsConnected() {
		p.Logger.Info("NATS not reachable yet, retrying in the background", "url", RedactURL(servers))
	}
	return nc, nil
}

func (p Policy) withDefaults() Policy {
	if p.ReconnectWait <= 0 {
		p.ReconnectWait = DefaultReconnectWait
	}
	if p.MaxReconnectWait < p.ReconnectWait {
		p.MaxReconnectWait = max(DefaultMaxReconnectWait, p.ReconnectWait)
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	return p
}

func call(hook func(*nats.Conn), nc *nats.Conn) {
	if hook != nil {
		hook(nc)
	}
}

// Backoff returns the delay before reconnection attempt number attempts
// (from 1): lo doubled per earlier attempt and capped at hi, plus up to 25%
// random jitter. lo must be positive.
func Backoff(lo, hi time.Duration) nats.ReconnectDelayHandler {
	return func(attempts int) time.Duration {
		d := lo
		for i := 1; i < attempts && d < hi; i++ {
			d *= 2
		}
		d = min(d, hi)
		return d + time.Duration(rand.Int64N(int64(d)/jitterDivisor+1))
	}
}

// connectedURL is the URL of the server nc is connected to, without user
// information. (ConnectedUrlRedacted masks a password only: a token in the
// user position would be logged as it is.)
func connectedURL(nc *nats.Conn) string { return RedactURL(nc.ConnectedUrlRedacted()) }

// RedactURL returns a NATS server URL, or a comma-separated list of them,
// with the user information (user name, password or token) of each
// removed, for logs and messages. A URL without a scheme is read as
// nats.go reads it, as nats://; one that does not parse loses everything
// up to its last "@".
func RedactURL(servers string) string {
	if servers == "" {
		return ""
	}
	parts := strings.Split(servers, ",")
	for i, s := range parts {
		parts[i] = redactOne(strings.TrimSpace(s))
	}
	return strings.Join(parts, ",")
}

func redactOne(s string) string {
	withScheme := s
	if !strings.Contains(s, "://") {
		withScheme = "nats://" + s
	}
	u, err := url.Parse(withScheme)
	if err != nil {
		if i := strings.LastIndex(s, "@"); i >= 0 {
			return s[i+1:]
		}
		return s
	}
	if u.User == nil {
		return s
	}
	u.User = nil
	if withScheme != s {
		return strings.TrimPrefix(u.String(), "nats://")
	}
	return u.String()
}

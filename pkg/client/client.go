package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/recbuf/recbuf/internal/audience"
	"github.com/recbuf/recbuf/internal/wire"
)

// ErrNoValue is returned by Latest when the record holds no value yet, and
// by Take when no value arrived within the timeout.
var ErrNoValue = errors.New("no value")

// StatusError is an unexpected HTTP answer from the buffer process.
type StatusError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is the server's error message, if it sent one.
	Message string
	// RetryAfter is how long the server asked to wait before trying again
	// (its Retry-After header in seconds; 0 if it sent none), e.g. with a
	// 503 when it serves as many streams as it allows.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("recbuf: http status %d", e.StatusCode)
	}
	return fmt.Sprintf("recbuf: http status %d: %s", e.StatusCode, e.Message)
}

// Value is one value of a record.
type Value struct {
	// Seq is the value's sequence number in the buffer process that served
	// it (they start at 1 and grow by one per value taken in).
	Seq uint64
	// Time is when the buffer process took the value in.
	Time time.Time
	// Subject is the NATS subject the value was published on.
	Subject string
	// Device and DeviceSeq are the publishing device's name and its own
	// sequence number, when it sent them (empty and 0 otherwise).
	Device    string
	DeviceSeq uint64
	// Payload is the value's bytes. For a JSON payload it is the same JSON
	// value, though its white space may differ: a stream sends line breaks
	// as spaces.
	Payload []byte
	// JSON is true when Payload is a JSON value.
	JSON bool
	// Instance is the buffer process instance that numbered Seq: sequence
	// numbers are per process (a restarted process or another replica
	// numbers from 1 again), so a position to resume from is the pair
	// (see AfterIn).
	Instance string
}

// Decode unmarshals a JSON payload into dst.
func (v Value) Decode(dst any) error {
	if !v.JSON {
		return fmt.Errorf("decode value %d: payload is not JSON", v.Seq)
	}
	if err := json.Unmarshal(v.Payload, dst); err != nil {
		return fmt.Errorf("decode value %d: %w", v.Seq, err)
	}
	return nil
}

func valueFromEnvelope(e *wire.Envelope) Value {
	return Value{
		Seq:       e.Seq,
		Time:      e.Time,
		Subject:   e.Subject,
		Device:    e.Device,
		DeviceSeq: e.DeviceSeq,
		Payload:   e.Payload(),
		JSON:      e.JSON != nil,
	}
}

// Client reads one record.
type Client struct {
	base string
	hc   *http.Client
	// tokenFile, when set, holds the bearer token sent with each request;
	// tokenFunc, when set, returns it.
	tokenFile string
	tokenFunc func(context.Context) (string, error)
	// connectRetry is how long Latest and Take try again a request whose
	// connection could not be made.
	connectRetry time.Duration
}

// DefaultConnectRetry is how long Latest and Take try again, by default, a
// request whose connection could not be made (refused, no route): a
// Service's new endpoint is reachable only once kube-proxy has programmed
// it, a moment after its pod is Ready.
const DefaultConnectRetry = 10 * time.Second

// WithConnectRetry sets how long Latest and Take try again a request whose
// connection could not be made, with backoff, within their context; 0
// returns the first such error. A request that was sent is never sent
// again: a take is at most once.
func WithConnectRetry(d time.Duration) Option { return func(c *Client) { c.connectRetry = d } }

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client use hc. hc must not set a Timeout, which
// would cut streams off; Latest and Take honour their context instead.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithBearerTokenFile makes the Client send the token held in the file at
// path (surrounding white space removed) as Authorization: Bearer with
// every request, for a Record whose consumers authenticate
// (spec.consumers.authentication ServiceAccountToken): in a pod, a
// projected serviceAccountToken volume whose audience is the Record's own
// (see Audience). The file
// is read again for each request, and for each reconnection of a stream,
// so that the kubelet's rotation of the token takes effect; a request whose
// file cannot be read, or is empty, fails without being sent.
func WithBearerTokenFile(path string) Option {
	return func(c *Client) { c.tokenFile, c.tokenFunc = path, nil }
}

// Audience is the audience of the tokens that the Record namespace/name
// accepts from its consumers: recbuf.dev/NAMESPACE/NAME. Each Record has
// its own, so that a token obtained for one Record is refused by every
// other. It is the audience: field of the consumer pod's projected
// serviceAccountToken volume, or of `kubectl create token SA --audience`.
func Audience(namespace, name string) string { return audience.Of(namespace, name) }

// AudienceForURL is the Audience of the Record that recordURL reaches,
// when it is a Record's in-cluster endpoint (its status.endpoint),
// http://SERVICE.NAMESPACE.svc[.DOMAIN][:PORT]/v1/records/NAME. It
// returns an error for any other URL (an IP address, a Service's short
// name, a port-forward): use Audience with the Record's namespace and name.
func AudienceForURL(recordURL string) (string, error) {
	u, err := url.Parse(recordURL)
	if err != nil {
		return "", fmt.Errorf("record url: %w", err)
	}
	name, ok := strings.CutPrefix(strings.TrimSuffix(u.Path, "/"), "/v1/records/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("record url %q: want a path /v1/records/NAME", recordURL)
	}
	labels := strings.Split(u.Hostname(), ".")
	if len(labels) < 3 || labels[0] == "" || labels[1] == "" || labels[2] != "svc" {
		return "", fmt.Errorf("record url %q: the host is not SERVICE.NAMESPACE.svc, so the Record's namespace is unknown: use Audience(namespace, name)", recordURL)
	}
	return Audience(labels[1], name), nil
}

// WithBearerTokenFunc makes the Client send the token that f returns as
// Authorization: Bearer with every request, and every reconnection of a
// stream; f is called each time, so it returns a fresh token when the one
// it holds is about to expire. It is for a program that requests its
// tokens itself (a TokenRequest with the Record's Audience), as kubectl
// recbuf --service-account does. A request for which f fails, or returns
// "", fails without being sent. It replaces WithBearerTokenFile.
func WithBearerTokenFunc(f func(context.Context) (string, error)) Option {
	return func(c *Client) { c.tokenFunc, c.tokenFile = f, "" }
}

// ErrNoToken is returned, wrapped, when WithBearerTokenFile's file is
// empty, or WithBearerTokenFunc's function returns "".
var ErrNoToken = errors.New("empty bearer token file")

// authorize sets the request's bearer token, when the Client has one.
func (c *Client) authorize(req *http.Request) error {
	if c.tokenFunc != nil {
		token, err := c.tokenFunc(req.Context())
		if err != nil {
			return fmt.Errorf("bearer token: %w", err)
		}
		if token == "" {
			return fmt.Errorf("bearer token: %w", ErrNoToken)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
	if c.tokenFile == "" {
		return nil
	}
	b, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return fmt.Errorf("bearer token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return fmt.Errorf("bearer token %s: %w", c.tokenFile, ErrNoToken)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return nil
}

// New returns a Client for the record at recordURL
// (http://HOST:PORT/v1/records/NAME).
func New(recordURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(recordURL)
	if err != nil {
		return nil, fmt.Errorf("record url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("record url %q: scheme must be http or https", recordURL)
	}
	c := &Client{base: strings.TrimSuffix(u.String(), "/"), hc: http.DefaultClient, connectRetry: DefaultConnectRetry}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// URL returns the record's URL.
func (c *Client) URL() string { return c.base }

// Latest returns the record's current value: the newest retained value of
// a ring, the latest of a SingleLatest, the pending value of a Mailbox
// (which stays pending). It returns ErrNoValue when there is none.
func (c *Client) Latest(ctx context.Context) (Value, error) {
	return c.getValue(ctx, http.MethodGet, c.base+"/latest")
}

// Take takes the pending value of a Mailbox record, waiting up to timeout
// for one (the server caps it, by default at 60s; 0 does not wait). It
// returns ErrNoValue when none came. A value taken is gone for every other
// consumer, so it is lost if this call fails while the answer is on its
// way (at-most-once delivery).
func (c *Client) Take(ctx context.Context, timeout time.Duration) (Value, error) {
	u := c.base + "/take?timeout=" + url.QueryEscape(timeout.String())
	return c.getValue(ctx, http.MethodPost, u)
}

func (c *Client) getValue(ctx context.Context, method, u string) (Value, error) {
	resp, err := c.send(ctx, method, u)
	if err != nil {
		return Value{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNoContent:
		return Value{}, ErrNoValue
	default:
		return Value{}, statusError(resp)
	}
	var env wire.Envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return Value{}, fmt.Errorf("%s %s: decode: %w", method, u, err)
	}
	v := valueFromEnvelope(&env)
	v.Instance = resp.Header.Get(wire.HeaderInstance)
	return v, nil
}

// send sends a request, again while its connection cannot be made, for up
// to connectRetry: nothing was sent then, so nothing is sent twice.
func (c *Client) send(ctx context.Context, method, u string) (*http.Response, error) {
	giveUp := time.Now().Add(c.connectRetry)
	backoff := 50 * time.Millisecond
	for {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return nil, fmt.Errorf("new request: %w", err)
		}
		if err := c.authorize(req); err != nil {
			return nil, err
		}
		resp, err := c.hc.Do(req)
		if err == nil {
			return resp, nil
		}
		if !notConnected(err) || time.Now().Add(backoff).After(giveUp) {
			return nil, fmt.Errorf("%s %s: %w", method, u, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s %s: %w", method, u, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// notConnected says whether err is a failure to make the connection, so
// that the request was never sent.
func notConnected(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// statusError reads a non-2xx answer into a *StatusError.
func statusError(resp *http.Response) error {
	e := &StatusError{StatusCode: resp.StatusCode}
	if secs, err := strconv.ParseUint(resp.Header.Get("Retry-After"), 10, 32); err == nil {
		e.RetryAfter = min(time.Duration(secs)*time.Second, maxRetryAfter)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var msg struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &msg) == nil && msg.Error != "" {
		e.Message = msg.Error
	} else {
		e.Message = strings.TrimSpace(string(body))
	}
	return e
}

// maxRetryAfter caps a server's Retry-After: a stream that waits longer
// than this is as good as gone.
const maxRetryAfter = time.Minute

// retryAfter returns the wait a *StatusError in err asks for, 0 if none.
func retryAfter(err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// retryable reports whether a stream should be reopened after err.
func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode >= 500 || se.StatusCode == http.StatusTooManyRequests
	}
	return true
}

func formatSeq(seq uint64) string { return strconv.FormatUint(seq, 10) }

package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/recbuf/recbuf/internal/wire"
)

// Handler handles the values of a stream.
type Handler interface {
	// HandleValue is called once per value, in order, with Stream's ctx.
	// Returning an error ends the stream: Stream returns that error.
	HandleValue(ctx context.Context, v Value) error
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, v Value) error

// HandleValue calls f(ctx, v).
func (f HandlerFunc) HandleValue(ctx context.Context, v Value) error { return f(ctx, v) }

// Reset tells a stream consumer that its resume position meant nothing to
// the buffer process it reached (it restarted, or is another replica, or
// never numbered that far): the stream starts afresh there, a ring from the
// oldest value it holds, the other types with their current value. The
// values that follow are numbered by that process, from wherever it is.
// The position stays the one given until a value of the new process
// arrives: a connection that fails before then resumes from it again, and
// is reset again.
type Reset struct {
	// After is the position the consumer asked to resume after; LastSeq the
	// newest sequence number of the process it reached.
	After, LastSeq uint64
	// Reason is "instance" (another process numbered After) or "ahead"
	// (After is beyond anything this process numbered).
	Reason string
}

// Backfill tells a stream opened with Last how many values held before it
// it starts with: the Count values up to LastSeq (the newest one when the
// stream connected) come next, then the live ones. Count is less than
// asked when the ring held fewer.
type Backfill struct {
	Count, LastSeq uint64
}

// Connection describes one established stream connection.
type Connection struct {
	// Instance identifies the buffer process serving it.
	Instance string
	// BufferType is the record's buffer type (SpmcRing, SingleLatest, Mailbox).
	BufferType string
	// Resumed is true when the stream resumed after a value it had seen.
	Resumed bool
	// After is that value's sequence number when Resumed.
	After uint64
}

// StreamOption configures Stream.
type StreamOption func(*streamConfig)

type streamConfig struct {
	start         Start
	afterSet      bool
	after         uint64
	afterInstance string
	onLag         func(missed uint64)
	onReset       func(Reset)
	onBackfill    func(Backfill)
	onConnect     func(Connection)
	onDisconnect  func(error)
	minBackoff    time.Duration
	maxBackoff    time.Duration
	idleTimeout   time.Duration
}

// After starts the stream right after the value with sequence number seq,
// as a reconnect does: without loss if the buffer still holds seq's
// successor, with a lag callback for the exact gap otherwise.
func After(seq uint64) StreamOption {
	return func(c *streamConfig) { c.afterSet, c.after = true, seq }
}

// AfterIn is After for a position numbered by the buffer process instance
// instance (a Value's Instance): a process that is not that instance (it
// restarted, or is another replica) does not take seq for its own but
// answers with a reset. A consumer that keeps its position across its own
// restarts keeps both.
func AfterIn(instance string, seq uint64) StreamOption {
	return func(c *streamConfig) { c.afterSet, c.after, c.afterInstance = true, seq, instance }
}

// OnLag registers f, called with the exact number of values missed
// whenever the stream falls behind a ring (or resumes past its retention).
// The next value delivered is the oldest one still held.
func OnLag(f func(missed uint64)) StreamOption { return func(c *streamConfig) { c.onLag = f } }

// OnReset registers f, called when the resume position was not the
// serving process's (see Reset).
func OnReset(f func(Reset)) StreamOption { return func(c *streamConfig) { c.onReset = f } }

// OnBackfill registers f, called before the values of a stream opened
// with Last (see Backfill).
func OnBackfill(f func(Backfill)) StreamOption { return func(c *streamConfig) { c.onBackfill = f } }

// OnConnect registers f, called each time a stream connection is
// established, before any of its values. Its values are those pushed after
// this point (unless the stream resumes or starts from the oldest).
func OnConnect(f func(Connection)) StreamOption {
	return func(c *streamConfig) { c.onConnect = f }
}

// OnDisconnect registers f, called with the cause each time a connection
// fails or ends, before Stream waits to reconnect.
func OnDisconnect(f func(error)) StreamOption {
	return func(c *streamConfig) { c.onDisconnect = f }
}

// WithBackoff sets the reconnection delays: the first retry waits about
// min (or the server's hint), each failed one doubles it up to max.
// Defaults: 100ms and 5s.
func WithBackoff(lo, hi time.Duration) StreamOption {
	return func(c *streamConfig) { c.minBackoff, c.maxBackoff = lo, hi }
}

// WithIdleTimeout sets how long Stream waits on a silent connection (no
// bytes at all: no value, no heartbeat) before it considers it dead and
// reopens it; 0 disables the check. Only waiting counts: the time the
// handler and callbacks take does not, however slow they are. Default 45s,
// three server heartbeats.
func WithIdleTimeout(d time.Duration) StreamOption {
	return func(c *streamConfig) { c.idleTimeout = d }
}

// errStreamEnded says the server ended the stream (its buffer closed).
var errStreamEnded = errors.New("stream ended by server")

// errIdle says the watchdog gave up on a silent connection.
var errIdle = errors.New("connection idle for too long")

// Stream reads the record's values and hands them to h until ctx ends or
// h fails. When a connection fails or the server ends it, Stream
// reconnects with backoff and resumes after the last value it delivered.
//
// Once ctx ends, nothing more reaches h or the callbacks, not even values
// already received. It returns ctx.Err() when ctx ends, h's error when h fails, and a
// *StatusError when the server refuses the stream for good (4xx, e.g. an
// unknown record).
func (c *Client) Stream(ctx context.Context, h Handler, opts ...StreamOption) error {
	cfg := streamConfig{minBackoff: 100 * time.Millisecond, maxBackoff: 5 * time.Second, idleTimeout: 45 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	s := &streamState{c: c, cfg: cfg, h: h, haveSeq: cfg.afterSet, lastSeq: cfg.after, posInstance: cfg.afterInstance}
	backoff := cfg.minBackoff
	for {
		connected, err := s.once(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var he *handlerError
		if errors.As(err, &he) {
			return he.err
		}
		if !retryable(err) {
			return err
		}
		if cfg.onDisconnect != nil {
			cfg.onDisconnect(err)
		}
		if connected {
			backoff = cfg.minBackoff
		}
		wait := max(backoff, s.retryHint, retryAfter(err))
		// Up to 20% jitter spreads the reconnects of many consumers after
		// a buffer process restarts.
		wait += time.Duration(rand.Int64N(int64(wait)/5 + 1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, cfg.maxBackoff)
	}
}

type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

type streamState struct {
	c       *Client
	cfg     streamConfig
	h       Handler
	haveSeq bool
	lastSeq uint64
	// lastID is the event id of the value numbered lastSeq, as the server
	// sent it: sent back as is, it is what that server's version reads.
	// Empty for a position given by After or AfterIn.
	lastID string
	// posInstance is the instance that numbered lastSeq ("" unknown). It
	// is not the instance of the latest connection: after a reset, and
	// until that connection delivers a value, the position is still the
	// old instance's.
	posInstance string
	retryHint   time.Duration
}

// once runs one connection; connected reports whether it got as far as an
// established stream (which resets the backoff).
func (s *streamState) once(parent context.Context) (connected bool, err error) {
	connCtx, cancel := context.WithCancel(parent)
	defer cancel()
	resp, err := s.connect(connCtx)
	if err != nil {
		return false, err
	}
	defer func() { _ = resp.Body.Close() }()
	connInstance := resp.Header.Get(wire.HeaderInstance)
	if s.cfg.onConnect != nil {
		s.cfg.onConnect(Connection{
			Instance:   connInstance,
			BufferType: resp.Header.Get(wire.HeaderType),
			Resumed:    s.haveSeq,
			After:      s.lastSeq,
		})
	}
	return true, s.read(parent, connCtx, cancel, resp.Body, connInstance)
}

// connect sends the request of a connection and returns its response once
// the server accepted the stream; any other answer is a *StatusError.
func (s *streamState) connect(ctx context.Context) (*http.Response, error) {
	req, err := s.request(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer func() { _ = resp.Body.Close() }()
		return nil, statusError(resp)
	}
	return resp, nil
}

// read hands the events of an established connection to handle until one
// of them, the connection or the caller ends it. connCtx is the
// connection's context, which cancel ends when the idle watchdog fires;
// parent is the caller's. The error is never nil.
func (s *streamState) read(parent, connCtx context.Context, cancel context.CancelFunc, r io.Reader, connInstance string) error {
	var w *watchdog
	if s.cfg.idleTimeout > 0 {
		w = newWatchdog(s.cfg.idleTimeout, cancel)
		defer w.disarm()
		r = &watchedReader{r: r, w: w}
	}
	er := wire.NewEventReader(r, 0)
	for {
		// The watchdog only runs while Stream waits for the connection:
		// time spent in the handler says nothing about the connection,
		// and values already read prove it alive.
		w.arm()
		ev, err := er.Next()
		w.disarm()
		if ev.Retry > 0 {
			s.retryHint = ev.Retry
		}
		// Nothing more is delivered once the caller gave up, even values
		// already read; nor once the watchdog gave up on the connection,
		// which the next connection resumes from.
		if parent.Err() != nil {
			return parent.Err()
		}
		if connCtx.Err() != nil {
			err = errIdle
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("read stream: %w", err)
		}
		if err := s.handle(parent, ev, connInstance); err != nil {
			return err
		}
	}
}

// request is the GET that opens (or resumes) the stream: from the position
// held, else from what the options ask for.
func (s *streamState) request(ctx context.Context) (*http.Request, error) {
	u := s.c.base + "/events"
	switch {
	case s.haveSeq:
	case s.cfg.start.Last() > 0:
		u += "?last=" + formatSeq(s.cfg.start.Last())
	case s.cfg.start.Oldest():
		u += "?from=oldest"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if err := s.c.authorize(req); err != nil {
		return nil, err
	}
	if s.haveSeq {
		id := s.lastID
		if id == "" {
			// A bare number with the header: what every server version
			// reads as a position of that instance.
			id = formatSeq(s.lastSeq)
		}
		req.Header.Set("Last-Event-ID", id)
		if s.posInstance != "" {
			req.Header.Set(wire.HeaderInstance, s.posInstance)
		}
	}
	return req, nil
}

// handle acts on one event of a connection to instance connInstance: a
// value moves the position and goes to the handler, the others go to
// their callbacks. A non-nil error ends the connection: the handler's
// (wrapped in handlerError), an event that does not decode, or
// errStreamEnded. Events of other types are ignored, for servers newer
// than this client.
func (s *streamState) handle(ctx context.Context, ev wire.Event, connInstance string) error {
	switch ev.Type {
	case wire.EventValue:
		return s.value(ctx, ev, connInstance)
	case wire.EventLag:
		return notify(ev, "lag", s.cfg.onLag, func(l wire.LagData) uint64 { return l.Missed })
	case wire.EventReset:
		return notify(ev, "reset", s.cfg.onReset, func(r wire.ResetData) Reset { return Reset(r) })
	case wire.EventBackfill:
		return notify(ev, "backfill", s.cfg.onBackfill, func(b wire.BackfillData) Backfill { return Backfill(b) })
	case wire.EventEnd:
		return errStreamEnded
	}
	return nil
}

// value moves the position to a value event of a connection to instance
// connInstance and hands the value to the handler.
func (s *streamState) value(ctx context.Context, ev wire.Event, connInstance string) error {
	var env wire.Envelope
	if err := json.Unmarshal(ev.Data, &env); err != nil {
		return fmt.Errorf("decode value event: %w", err)
	}
	s.haveSeq, s.lastSeq, s.lastID, s.posInstance = true, env.Seq, "", connInstance
	// A server that names the instance in the id says who numbered
	// the value; an earlier one sent a bare number and the header.
	if inst, seq, err := wire.ParseEventID(ev.ID); err == nil && inst != "" && seq == env.Seq {
		s.lastID, s.posInstance = ev.ID, inst
	}
	v := valueFromEnvelope(&env)
	v.Instance = s.posInstance
	if err := s.h.HandleValue(ctx, v); err != nil {
		return &handlerError{err}
	}
	return nil
}

// notify decodes the data of an event of type name into a D and passes
// it, converted by conv, to the callback f if there is one. An event that
// does not decode ends the connection whether or not there is a callback,
// as a value that does not decode does.
func notify[D, A any](ev wire.Event, name string, f func(A), conv func(D) A) error {
	var d D
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return fmt.Errorf("decode %s event: %w", name, err)
	}
	if f != nil {
		f(conv(d))
	}
	return nil
}

// watchdog cancels a connection that stays silent for too long while it
// is armed. Its methods are safe on a nil watchdog (no idle timeout).
type watchdog struct {
	d     time.Duration
	mu    sync.Mutex
	t     *time.Timer
	armed bool
}

func newWatchdog(d time.Duration, fire func()) *watchdog {
	t := time.AfterFunc(d, fire)
	t.Stop()
	return &watchdog{d: d, t: t}
}

// arm starts a full idle period.
func (w *watchdog) arm() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.armed = true
	w.t.Reset(w.d)
	w.mu.Unlock()
}

// kick restarts the idle period of an armed watchdog: bytes arrived.
func (w *watchdog) kick() {
	if w == nil {
		return
	}
	w.mu.Lock()
	if w.armed {
		w.t.Reset(w.d)
	}
	w.mu.Unlock()
}

// disarm stops the watchdog until the next arm.
func (w *watchdog) disarm() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.armed = false
	w.t.Stop()
	w.mu.Unlock()
}

type watchedReader struct {
	r io.Reader
	w *watchdog
}

func (r *watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.w.kick()
	}
	return n, err
}

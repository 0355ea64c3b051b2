package consumerapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/logthrottle"
	"github.com/recbuf/recbuf/internal/wire"
)

// Defaults of Config's durations.
const (
	DefaultHeartbeat      = 15 * time.Second
	DefaultRetry          = time.Second
	DefaultTakeTimeout    = 5 * time.Second
	DefaultMaxTakeTimeout = 60 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
)

// Defaults of Config's caps. A stream costs two goroutines, a buffer of
// 4 to 64 KiB and, when its client does not read, up to twice
// SendBufferBytes (256 KiB) of socket memory: 256 streams stay under
// 100 MiB however hostile their clients, and are more than a record's
// consumers need. A take is meant to have one taker per Mailbox.
// DefaultMaxStreams is wire's, which the manager's sizing reads too.
const (
	DefaultMaxStreams = wire.DefaultMaxStreams
	DefaultMaxTakes   = 64
)

// busyRetryAfter is the Retry-After of a request refused because the
// process serves as many as its cap.
const busyRetryAfter = 2 * time.Second

// Record is one record the server serves.
type Record struct {
	// Name is the record's name, the {name} in the API's paths.
	Name string
	// Subject is the NATS subject the record is fed from (informational).
	Subject string
	// Buffer holds the record's values.
	Buffer buffer.Buffer[wire.Message]
	// Shared says the record's numbering is shared with other processes:
	// a durable record numbers its values as its stream does, on every
	// replica and restart. A position of this instance beyond the newest
	// value is then one this process has not received yet, rather than
	// another process's numbering: the stream waits for the value after it
	// instead of beginning with a reset.
	Shared bool
}

// Config configures a Server. The zero value is usable.
type Config struct {
	// Instance identifies this process's numbering of values (see
	// wire.HeaderInstance and wire.ParseEventID); empty: a random one of 16
	// hex digits. It must be wire.ValidInstance.
	Instance string
	// Heartbeat is how long a stream may stay silent before the server
	// sends an SSE comment (<= 0: DefaultHeartbeat).
	Heartbeat time.Duration
	// Retry is the reconnection delay suggested to SSE clients (<= 0:
	// DefaultRetry).
	Retry time.Duration
	// DefaultTakeTimeout is how long take waits without ?timeout= (<= 0:
	// DefaultTakeTimeout); MaxTakeTimeout caps ?timeout= (<= 0:
	// DefaultMaxTakeTimeout).
	DefaultTakeTimeout time.Duration
	MaxTakeTimeout     time.Duration
	// WriteTimeout bounds each write of every answer, streams and others,
	// so that a client that stopped reading is let go: a write of up to
	// wire.PieceBytes that makes no progress for WriteTimeout fails and
	// ends the request (<= 0: DefaultWriteTimeout). An answer that is no
	// event stream must moreover be written whole within WriteTimeout of
	// its request's start (a take: after up to MaxTakeTimeout of waiting).
	WriteTimeout time.Duration
	// MaxStreams caps the event streams open at once, over all records
	// (<= 0: DefaultMaxStreams); MaxTakes the take requests in progress
	// (<= 0: DefaultMaxTakes). One more is refused with 503 and
	// Retry-After, and counted in Stats.
	MaxStreams int
	MaxTakes   int
	// AllowedOrigins are the origins whose pages may read the records
	// from a browser (CORS): exact origins, https://dash.example.com, or
	// the one entry AnyOrigin, which an Authorizer forbids (see
	// ParseAllowedOrigins). Empty: no CORS header is ever sent, and a
	// browser lets only pages of the API's own origin read it.
	AllowedOrigins []string
	// MaxRequests caps the consumer requests in progress, of every kind
	// (streams, takes, latest, info, list), over all records (<= 0:
	// MaxStreams + MaxTakes + DefaultMaxQuickRequests); MaxRequestsPerClient those from one client IP
	// address (<= 0: DefaultMaxRequestsPerClient). One more is refused
	// with 503 and Retry-After, and counted in Stats.
	MaxRequests          int
	MaxRequestsPerClient int
	// Authorizer, when set, decides which requests for records are let
	// in (nil: all). /healthz and the like are not the consumer API's.
	Authorizer Authorizer
	// Logger receives log lines (nil: slog.Default()).
	Logger *slog.Logger
}

// Stats counts one record's consumers.
type Stats struct {
	// Streams is the number of open event streams; Takes the number of
	// take requests waiting.
	Streams int64
	Takes   int64
	// StreamsTotal, TakesTotal and LatestTotal count requests served.
	StreamsTotal uint64
	TakesTotal   uint64
	LatestTotal  uint64
	// StreamsRefused and TakesRefused count requests refused because the
	// process served as many as Config.MaxStreams or Config.MaxTakes.
	StreamsRefused uint64
	TakesRefused   uint64
	// RequestsRefused and ClientRefused count requests refused because the
	// process served as many as Config.MaxRequests, or as many from their
	// client address as Config.MaxRequestsPerClient. They are the
	// process's, whatever the record (a list names none): the same in
	// every record's Stats.
	RequestsRefused uint64
	ClientRefused   uint64
}

type record struct {
	Record
	streams, takes                        atomic.Int64
	streamsTotal, takesTotal, latestTotal atomic.Uint64
	streamsRefused, takesRefused          atomic.Uint64
	// events is the record's event cache, made for its first stream.
	events func() *eventCache
}

// Server is the consumer API's http.Handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	records map[string]*record
	names   []string
	mux     *http.ServeMux
	// streams and takes are this process's, for its caps; each record
	// counts its own too, for Stats.
	streams, takes slots
	// admission caps the requests of every kind; requestsRefused and
	// clientRefused count its refusals.
	admission                      *admission
	requestsRefused, clientRefused atomic.Uint64
	// authFailures throttles the log lines of failed authorizations.
	authFailures *logthrottle.Throttle
	// instance is Config.Instance until SetInstance changes it.
	instance atomic.Pointer[string]
	// cors is nil without Config.AllowedOrigins.
	cors *cors
}

// slots counts requests of one kind against a cap.
type slots struct {
	n   atomic.Int64
	max int64
}

// acquire takes a slot, or reports false when all are taken; a true
// acquire is undone by release.
func (sl *slots) acquire() bool {
	if sl.n.Add(1) > sl.max {
		sl.n.Add(-1)
		return false
	}
	return true
}

func (sl *slots) release() { sl.n.Add(-1) }

// ErrDuplicateRecord is returned by New when two records share a name.
var ErrDuplicateRecord = errors.New("duplicate record name")

// ErrInvalidInstance is returned by New for a Config.Instance that cannot
// be part of an event id (see wire.ValidInstance).
var ErrInvalidInstance = errors.New("invalid instance id")

// New returns a Server for records.
func New(cfg Config, records ...Record) (*Server, error) {
	if cfg.Instance == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.Instance = hex.EncodeToString(b[:])
	}
	if !wire.ValidInstance(cfg.Instance) {
		return nil, fmt.Errorf("%w: %s", ErrInvalidInstance, wire.Quote(cfg.Instance))
	}
	cfg.Heartbeat = orDefault(cfg.Heartbeat, DefaultHeartbeat)
	cfg.Retry = orDefault(cfg.Retry, DefaultRetry)
	cfg.DefaultTakeTimeout = orDefault(cfg.DefaultTakeTimeout, DefaultTakeTimeout)
	cfg.MaxTakeTimeout = orDefault(cfg.MaxTakeTimeout, DefaultMaxTakeTimeout)
	cfg.WriteTimeout = orDefault(cfg.WriteTimeout, DefaultWriteTimeout)
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.MaxTakes <= 0 {
		cfg.MaxTakes = DefaultMaxTakes
	}
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = cfg.MaxStreams + cfg.MaxTakes + DefaultMaxQuickRequests
	}
	if cfg.MaxRequestsPerClient <= 0 {
		cfg.MaxRequestsPerClient = DefaultMaxRequestsPerClient
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	origins, err := ParseAllowedOrigins(cfg.AllowedOrigins, cfg.Authorizer != nil)
	if err != nil {
		return nil, err
	}
	s := &Server{cors: newCORS(origins), admission: newAdmission(cfg.MaxRequests, cfg.MaxRequestsPerClient), cfg: cfg, log: cfg.Logger, records: make(map[string]*record, len(records)),
		streams: slots{max: int64(cfg.MaxStreams)}, takes: slots{max: int64(cfg.MaxTakes)},
		authFailures: logthrottle.New(authFailureLogInterval, nil)}
	for _, r := range records {
		if _, dup := s.records[r.Name]; dup {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateRecord, r.Name)
		}
		s.records[r.Name] = &record{Record: r, events: sync.OnceValue(func() *eventCache { return newEventCache(r.Buffer) })}
		s.names = append(s.names, r.Name)
	}
	slices.Sort(s.names)
	s.instance.Store(&cfg.Instance)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/records", s.handleList)
	mux.HandleFunc("GET /v1/records/{name}", s.withRecord(consumes, s.handleInfo))
	mux.HandleFunc("GET /v1/records/{name}/events", s.withRecord(streamOp, s.handleEvents))
	mux.HandleFunc("GET /v1/records/{name}/latest", s.withRecord(consumes, s.handleLatest))
	mux.HandleFunc("POST /v1/records/{name}/take", s.withRecord(takes, s.handleTake))
	// Any other method of take: the more specific POST pattern wins.
	mux.HandleFunc("/v1/records/{name}/take", takeNeedsPOST)
	s.mux = mux
	return s, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Instance returns the instance id the server stamps on responses.
func (s *Server) Instance() string { return *s.instance.Load() }

// SetInstance changes the instance id, for a process that learns the
// numbering of its values after it started serving: a buffer restored from
// a durable stream numbers them as the stream does, and the stream names
// the instance. Requests already answering keep the id they began with.
func (s *Server) SetInstance(id string) error {
	if !wire.ValidInstance(id) {
		return fmt.Errorf("%w: %s", ErrInvalidInstance, wire.Quote(id))
	}
	s.instance.Store(&id)
	return nil
}

// ServeHTTP serves the consumer API. Every write of every answer has a
// deadline, and every answer but a stream a deadline for the whole (see
// deadlineWriter); every request counts against the caps of admitRequest.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	dw := newDeadlineWriter(w, s.cfg.WriteTimeout, s.answerDeadline(r, now))
	dw.Header().Set(wire.HeaderInstance, s.Instance())
	if s.cors != nil && isRecordPath(r.URL.Path) && s.cors.handle(dw, r) {
		return // a preflight, answered
	}
	release, ok := s.admitRequest(dw, r)
	if !ok {
		return
	}
	defer release()
	s.mux.ServeHTTP(dw, r)
}

// isRecordPath reports whether path is the record list's or under it:
// the paths a page of another origin may be allowed to read.
func isRecordPath(path string) bool {
	return path == "/v1/records" || strings.HasPrefix(path, "/v1/records/")
}

// Stats returns the consumer counters of the named record (zero for an
// unknown name).
func (s *Server) Stats(name string) Stats {
	rec, ok := s.records[name]
	if !ok {
		return Stats{}
	}
	return Stats{
		Streams:        rec.streams.Load(),
		Takes:          rec.takes.Load(),
		StreamsTotal:   rec.streamsTotal.Load(),
		TakesTotal:     rec.takesTotal.Load(),
		LatestTotal:    rec.latestTotal.Load(),
		StreamsRefused: rec.streamsRefused.Load(),
		TakesRefused:   rec.takesRefused.Load(),
		// The process's: see Stats.
		RequestsRefused: s.requestsRefused.Load(),
		ClientRefused:   s.clientRefused.Load(),
	}
}

// withRecord authorizes the request for the record of the path, as opOf
// says for that record (nil when there is none), then serves it with h.
// Authorization comes before the answer that no such record exists, so
// that who may not use a record does not learn whether it exists.
func (s *Server) withRecord(opOf func(*record) Operation, h func(http.ResponseWriter, *http.Request, *record)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rec, ok := s.records[r.PathValue("name")]
		if !s.authorize(w, r, r.PathValue("name"), opOf(rec)) {
			return
		}
		if !ok {
			writeError(w, http.StatusNotFound, "no record "+wire.Quote(r.PathValue("name")))
			return
		}
		w.Header().Set(wire.HeaderType, string(rec.Buffer.Type()))
		h(w, r, rec)
	}
}

// Info describes a record in GET /v1/records and GET /v1/records/{name}.
type Info struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Capacity  int    `json:"capacity"`
	Subject   string `json:"subject"`
	LastSeq   uint64 `json:"lastSeq"`
	Occupancy int    `json:"occupancy"`
	// Bytes is the size of the values held and MaxBytes the ring's byte
	// budget (both absent without one).
	Bytes       int64 `json:"bytes,omitempty"`
	MaxBytes    int64 `json:"maxBytes,omitempty"`
	Subscribers int   `json:"subscribers"`
}

func (rec *record) info() Info {
	st := rec.Buffer.Stats()
	return Info{
		Name:        rec.Name,
		Type:        string(rec.Buffer.Type()),
		Capacity:    st.Capacity,
		Subject:     rec.Subject,
		LastSeq:     st.LastSeq,
		Occupancy:   st.Occupancy,
		Bytes:       st.Bytes,
		MaxBytes:    st.MaxBytes,
		Subscribers: st.Subscribers,
	}
}

// handleList lists the records: who may read every one of them may list
// them (in a cluster a process serves one).
func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	for _, n := range s.names {
		if !s.authorize(w, r, n, OpConsume) {
			return
		}
	}
	list := struct {
		Records []Info `json:"records"`
	}{Records: make([]Info, 0, len(s.names))}
	for _, n := range s.names {
		list.Records = append(list.Records, s.records[n].info())
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleInfo(w http.ResponseWriter, _ *http.Request, rec *record) {
	writeJSON(w, http.StatusOK, rec.info())
}

// handleLatest answers with the current value (Peek): the newest retained
// one for a ring, the latest for SingleLatest, the pending one for a Mailbox
// (which stays pending). 204 when there is none.
func (s *Server) handleLatest(w http.ResponseWriter, r *http.Request, rec *record) {
	rec.latestTotal.Add(1)
	raw, err := rawFormat(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	it, ok := rec.Buffer.Peek()
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeItem(w, it, raw)
}

// handleTake takes the Mailbox's pending value, waiting up to the timeout
// for one. 204 on timeout.
func (s *Server) handleTake(w http.ResponseWriter, r *http.Request, rec *record) {
	if rec.Buffer.Type() != buffer.TypeMailbox {
		writeError(w, http.StatusConflict, fmt.Sprintf("take needs a Mailbox record, %q is a %s", rec.Name, rec.Buffer.Type()))
		return
	}
	raw, err := rawFormat(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	timeout := s.cfg.DefaultTakeTimeout
	if v := r.URL.Query().Get("timeout"); v != "" {
		if timeout, err = parseTimeout(v); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	timeout = min(timeout, s.cfg.MaxTakeTimeout)

	if !s.takes.acquire() {
		rec.takesRefused.Add(1)
		writeBusy(w, fmt.Sprintf("this buffer process serves %d takes at once, its most: retry later", s.cfg.MaxTakes))
		return
	}
	defer s.takes.release()
	rec.takesTotal.Add(1)
	rec.takes.Add(1)
	defer rec.takes.Add(-1)
	reader, err := rec.Buffer.Subscribe()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "record closed")
		return
	}
	defer reader.Close()
	var it buffer.Item[wire.Message]
	if timeout == 0 {
		it, err = reader.TryRecv()
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		it, err = reader.Recv(ctx)
		cancel()
	}
	switch {
	case err == nil:
		writeItem(w, it, raw)
	case errors.Is(err, buffer.ErrEmpty), errors.Is(err, context.DeadlineExceeded):
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, buffer.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "record closed")
	case errors.Is(err, buffer.ErrTakeFailed):
		// A durable Mailbox could not remove the value from its stream:
		// handing it out could hand it out twice. It stays pending.
		writeBusy(w, "the value could not be taken from its stream: retry later")
	default:
		// The client went away while waiting: nothing was taken.
	}
}

// takeNeedsPOST answers take by any method but POST. Take removes the
// value, so a GET, which caches, prefetchers and crawlers feel free to
// send, must not take it: 405 with the method that works, before even
// looking at the record.
func takeNeedsPOST(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", http.MethodPost)
	writeError(w, http.StatusMethodNotAllowed, "take removes the value: use POST, not "+wire.Quote(r.Method))
}

// parseTimeout accepts a Go duration ("5s", "250ms") or seconds ("5", "0.5").
func parseTimeout(v string) (time.Duration, error) {
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return d, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 1e6 {
		return time.Duration(f * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("timeout %s is neither a duration (5s) nor seconds (5)", wire.Quote(v))
}

func rawFormat(r *http.Request) (bool, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "", "envelope":
		return false, nil
	case "raw":
		return true, nil
	default:
		return false, fmt.Errorf("format %s is neither envelope nor raw", wire.Quote(f))
	}
}

// writeItem answers with one value: its envelope, or with raw the payload
// itself (time and sequence in headers).
func writeItem(w http.ResponseWriter, it buffer.Item[wire.Message], raw bool) {
	h := w.Header()
	h.Set(wire.HeaderSeq, strconv.FormatUint(it.Seq, 10))
	h.Set("Cache-Control", "no-store")
	if raw {
		if it.Value.JSON {
			h.Set("Content-Type", "application/json")
		} else {
			h.Set("Content-Type", "application/octet-stream")
		}
		h.Set(wire.HeaderTime, it.Value.Received.UTC().Format(time.RFC3339Nano))
		if it.Value.Device != "" {
			h.Set(wire.HeaderDevice, it.Value.Device)
		}
		if it.Value.DeviceSeq != 0 {
			h.Set(wire.HeaderDeviceSeq, strconv.FormatUint(it.Value.DeviceSeq, 10))
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(it.Value.Data)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	// In pieces, not built whole: a copy of a large value per answer
	// would let a few hundred clients that do not read exhaust memory.
	bp := pieces.Get().(*[]byte)
	buf, err := wire.WriteEnvelope(w, *bp, it.Seq, &it.Value)
	if err == nil {
		_, _ = w.Write(append(buf, '\n'))
	}
	*bp = buf[:0]
	pieces.Put(bp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeBusy refuses a request the process has no room for: 503, with how
// long to wait before trying again.
func writeBusy(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(busyRetryAfter/time.Second)))
	writeError(w, http.StatusServiceUnavailable, msg)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{msg})
}

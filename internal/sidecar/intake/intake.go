package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/logthrottle"
	"github.com/recbuf/recbuf/internal/sizing"
	"github.com/recbuf/recbuf/internal/wire"
)

// Reasons a message is dropped, used as the "reason" label of the dropped
// metric.
//
// A NATS server that finds the buffer process too slow to read its socket
// (the server's own slow-consumer detection) closes the connection without
// saying why: nats.go sees a plain disconnect, which no reason here can
// tell apart from a server restart or a network failure, and the server
// does not say how many messages it discarded. It is visible as
// recbuf_nats_reconnects_total, and its loss as upstream gaps where devices
// number their messages. The bounded pending queue makes it rare: nats.go
// reads the socket at once and drops what the queue cannot hold on this
// side, where every message is counted (ReasonSlowConsumer).
const (
	// ReasonOversized: the payload is larger than MaxMessageBytes, or (a
	// case the buffer process's configuration rules out) larger than the
	// ring's whole byte budget (buffer.ErrTooLarge).
	ReasonOversized = "oversized"
	// ReasonMalformed: a device header is present but unusable.
	ReasonMalformed = "malformed"
	// ReasonSlowConsumer: nats.go discarded the message because the
	// subscription's pending queue was full (the process could not keep
	// up): more than PendingMessages messages or PendingBytes bytes were
	// waiting.
	ReasonSlowConsumer = "slow_consumer"
	// ReasonClosed: the message arrived after the buffer was closed.
	ReasonClosed = "closed"
)

// maxTrackedDevices bounds the per-device sequence state kept to count
// upstream gaps; beyond it the state is forgotten and starts over.
const maxTrackedDevices = 10000

// Config configures an Intake.
type Config struct {
	// Subject is the NATS subject to subscribe to; wildcards are allowed.
	Subject string
	// QueueGroup, when set, makes several processes share the subject's
	// messages (each message goes to one of them).
	QueueGroup string
	// MaxMessageBytes is the largest payload accepted (<= 0:
	// wire.DefaultMaxMessageBytes).
	MaxMessageBytes int
	// PendingMessages and PendingBytes bound the subscription's pending
	// queue, the messages nats.go received and the handler has not taken
	// in yet (<= 0: sizing.PendingLimits of MaxMessageBytes). nats.go's own
	// default, 64 MiB, would sit in memory on top of the buffer.
	PendingMessages int
	PendingBytes    int64
	// DropLogInterval is the least time between two log lines about dropped
	// messages (<= 0: 10s). Drops in between are summed into the next line.
	DropLogInterval time.Duration
	// Logger receives the intake's log lines (nil: slog.Default()).
	Logger *slog.Logger
	// Now returns the receive time of a message (nil: time.Now).
	Now func() time.Time
}

// Stats is a snapshot of an Intake's counters.
type Stats struct {
	// Received counts messages pushed into the buffer.
	Received uint64
	// Oversized, Malformed, SlowConsumer and Closed count dropped messages
	// by reason.
	Oversized    uint64
	Malformed    uint64
	SlowConsumer uint64
	Closed       uint64
	// SlowConsumerEvents counts the times NATS reported this subscription
	// as a slow consumer.
	SlowConsumerEvents uint64
	// UpstreamGaps sums the values devices numbered but that never arrived
	// (gaps in HeaderDeviceSeq, per device).
	UpstreamGaps uint64
	// PendingMessages and PendingBytes are the subscription's queue now,
	// PendingLimitMessages and PendingLimitBytes its bounds
	// (Config.PendingMessages and PendingBytes); all 0 before Start.
	PendingMessages, PendingLimitMessages int
	PendingBytes, PendingLimitBytes       int64
	// LastMessage is when the newest message was received (zero: none).
	LastMessage time.Time
}

// Dropped is the total of dropped messages over all reasons.
func (s Stats) Dropped() uint64 { return s.Oversized + s.Malformed + s.SlowConsumer + s.Closed }

// Intake moves one subscription's messages into a buffer.
type Intake struct {
	buf     buffer.Buffer[wire.Message]
	cfg     Config
	log     *slog.Logger
	dropLog *logthrottle.Throttle

	received        atomic.Uint64
	oversized       atomic.Uint64
	malformed       atomic.Uint64
	closed          atomic.Uint64
	slowEvents      atomic.Uint64
	slowDropped     atomic.Uint64 // last known sub.Dropped()
	upstreamGaps    atomic.Uint64
	lastMessageNano atomic.Int64

	// devices is the last HeaderDeviceSeq per device; only the handler
	// goroutine touches it.
	devices map[string]uint64

	mu  sync.Mutex
	sub *nats.Subscription
}

// New returns an Intake that pushes into buf.
func New(buf buffer.Buffer[wire.Message], cfg Config) *Intake {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = wire.DefaultMaxMessageBytes
	}
	if msgs, bytes := sizing.PendingLimits(int64(cfg.MaxMessageBytes)); cfg.PendingMessages <= 0 || cfg.PendingBytes <= 0 {
		cfg.PendingMessages, cfg.PendingBytes = msgs, bytes
	}
	if cfg.DropLogInterval <= 0 {
		cfg.DropLogInterval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger.With("subject", cfg.Subject)
	return &Intake{
		buf:     buf,
		cfg:     cfg,
		log:     log,
		dropLog: logthrottle.New(cfg.DropLogInterval, cfg.Now),
		devices: make(map[string]uint64),
	}
}

// Start subscribes on nc. It works while nc is still (re)connecting: the
// subscription is sent to the server once connected.
func (in *Intake) Start(nc *nats.Conn) error {
	var (
		sub *nats.Subscription
		err error
	)
	if in.cfg.QueueGroup != "" {
		sub, err = nc.QueueSubscribe(in.cfg.Subject, in.cfg.QueueGroup, in.HandleMsg)
	} else {
		sub, err = nc.Subscribe(in.cfg.Subject, in.HandleMsg)
	}
	if err != nil {
		return fmt.Errorf("subscribe to %q: %w", in.cfg.Subject, err)
	}
	if err := sub.SetPendingLimits(in.cfg.PendingMessages, int(in.cfg.PendingBytes)); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("pending limits of the subscription to %q: %w", in.cfg.Subject, err)
	}
	in.mu.Lock()
	in.sub = sub
	in.mu.Unlock()
	return nil
}

// Subscription returns the NATS subscription (nil before Start), so that
// the connection's error handler can tell which intake a slow-consumer
// error is about.
func (in *Intake) Subscription() *nats.Subscription {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.sub
}

// Drain stops intake: the server stops sending, messages already on their
// way are still pushed, then the subscription closes. It returns when the
// subscription is closed, or with ctx's error when ctx ends first (the
// subscription is then dropped at once).
func (in *Intake) Drain(ctx context.Context) error {
	sub := in.Subscription()
	if sub == nil {
		return nil
	}
	in.refreshDropped()
	closed := sub.StatusChanged(nats.SubscriptionClosed)
	if err := sub.Drain(); err != nil {
		if errors.Is(err, nats.ErrBadSubscription) || errors.Is(err, nats.ErrConnectionClosed) {
			return nil
		}
		_ = sub.Unsubscribe()
		return fmt.Errorf("drain subscription to %q: %w", in.cfg.Subject, err)
	}
	for {
		select {
		case _, ok := <-closed:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			_ = sub.Unsubscribe()
			return fmt.Errorf("drain subscription to %q: %w", in.cfg.Subject, ctx.Err())
		}
	}
}

// Stop drops the subscription at once, for when a drain is pointless
// (NATS is disconnected, so nothing is on its way).
func (in *Intake) Stop() {
	if sub := in.Subscription(); sub != nil {
		in.refreshDropped()
		_ = sub.Unsubscribe()
	}
}

// SlowConsumer records that NATS reported the subscription as a slow
// consumer; the connection's error handler calls it.
func (in *Intake) SlowConsumer() {
	in.slowEvents.Add(1)
	in.refreshDropped()
	in.log.Warn("NATS slow consumer: messages dropped before the buffer", "dropped", in.slowDropped.Load())
}

// refreshDropped copies nats.go's count of messages it discarded for this
// subscription; it stays readable after the subscription closes.
func (in *Intake) refreshDropped() {
	sub := in.Subscription()
	if sub == nil {
		return
	}
	if n, err := sub.Dropped(); err == nil && n >= 0 {
		in.slowDropped.Store(uint64(n))
	}
}

// HandleMsg takes one message in. It is the subscription's handler, and
// exported for benchmarks that feed an Intake without a subscription.
func (in *Intake) HandleMsg(m *nats.Msg) {
	in.handle(m, 0, in.cfg.Now())
}

// HandleStreamMsg takes in message number seq of a durable stream, stored
// by the stream at stored (its receive time: a value restored after a
// restart keeps the time it first arrived). The buffer numbers it seq
// (buffer.PushSeq); a message not after the newest one held is a
// duplicate the stream redelivered and is ignored. The same checks and
// counters as HandleMsg apply.
func (in *Intake) HandleStreamMsg(m *nats.Msg, seq uint64, stored time.Time) {
	in.handle(m, seq, stored)
}

// handle is HandleMsg (seq 0: the buffer numbers the value) and
// HandleStreamMsg.
func (in *Intake) handle(m *nats.Msg, seq uint64, now time.Time) {
	if len(m.Data) > in.cfg.MaxMessageBytes {
		in.oversized.Add(1)
		in.logDrop(ReasonOversized, "bytes", len(m.Data), "limit", in.cfg.MaxMessageBytes)
		return
	}
	msg := wire.Message{
		Data:     m.Data,
		Received: now,
		Subject:  m.Subject,
		JSON:     wire.IsJSON(m.Data),
	}
	if m.Header != nil {
		if err := readDeviceHeaders(m.Header, &msg); err != nil {
			in.malformed.Add(1)
			in.logDrop(ReasonMalformed, "error", err.Error())
			return
		}
		if msg.Device == "" && msg.DeviceSeq == 0 && msg.JSON && m.Header.Get(wire.HeaderMQTT) != "" {
			readDeviceFields(m.Data, &msg)
		}
	}
	if msg.DeviceSeq != 0 {
		in.countGap(msg.Device, msg.DeviceSeq)
	}
	var err error
	if seq == 0 {
		err = in.buf.Push(msg)
	} else {
		err = in.buf.PushSeq(seq, msg)
	}
	if err != nil {
		if errors.Is(err, buffer.ErrSeqNotAfter) {
			return
		}
		if errors.Is(err, buffer.ErrTooLarge) {
			in.oversized.Add(1)
			in.logDrop(ReasonOversized, "error", err.Error())
			return
		}
		in.closed.Add(1)
		in.logDrop(ReasonClosed, "error", err.Error())
		return
	}
	in.received.Add(1)
	in.lastMessageNano.Store(now.UnixNano())
}

// errMalformedHeader is wrapped by the errors readDeviceHeaders returns.
var errMalformedHeader = errors.New("malformed device header")

func readDeviceHeaders(h nats.Header, msg *wire.Message) error {
	msg.Device = h.Get(wire.HeaderDevice)
	if len(msg.Device) > wire.MaxDeviceLen {
		return fmt.Errorf("%w: %s is %d bytes, limit %d", errMalformedHeader, wire.HeaderDevice, len(msg.Device), wire.MaxDeviceLen)
	}
	s := h.Get(wire.HeaderDeviceSeq)
	if s == "" {
		return nil
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 {
		return fmt.Errorf("%w: %s %q is not a positive integer", errMalformedHeader, wire.HeaderDeviceSeq, s)
	}
	msg.DeviceSeq = seq
	return nil
}

// countGap adds the values a device numbered but never delivered. A
// sequence number that does not grow means the device restarted its
// numbering (or a message was duplicated): no gap is counted.
func (in *Intake) countGap(device string, seq uint64) {
	last, ok := in.devices[device]
	if ok && seq > last+1 {
		in.upstreamGaps.Add(seq - last - 1)
	}
	if !ok && len(in.devices) >= maxTrackedDevices {
		clear(in.devices)
	}
	in.devices[device] = seq
}

// Stats returns a snapshot of the counters.
func (in *Intake) Stats() Stats {
	in.refreshDropped()
	s := Stats{
		Received:           in.received.Load(),
		Oversized:          in.oversized.Load(),
		Malformed:          in.malformed.Load(),
		SlowConsumer:       in.slowDropped.Load(),
		Closed:             in.closed.Load(),
		SlowConsumerEvents: in.slowEvents.Load(),
		UpstreamGaps:       in.upstreamGaps.Load(),
	}
	if ns := in.lastMessageNano.Load(); ns != 0 {
		s.LastMessage = time.Unix(0, ns).UTC()
	}
	if sub := in.Subscription(); sub != nil {
		s.PendingLimitMessages, s.PendingLimitBytes = in.cfg.PendingMessages, in.cfg.PendingBytes
		if msgs, bytes, err := sub.Pending(); err == nil {
			s.PendingMessages, s.PendingBytes = msgs, int64(bytes)
		}
	}
	return s
}

// logDrop logs a dropped message at most once per DropLogInterval: the
// first drop at once, later ones summed into the next line. Every drop is
// counted in Stats whether or not it is logged.
func (in *Intake) logDrop(reason string, kv ...any) {
	n, ok := in.dropLog.Allow()
	if !ok {
		return
	}
	args := append([]any{"reason", reason, "droppedSinceLastLog", n}, kv...)
	in.log.Warn("Dropped message", args...)
}

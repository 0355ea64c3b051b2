package sidecar

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/logthrottle"
	"github.com/recbuf/recbuf/internal/sidecar/intake"
	"github.com/recbuf/recbuf/internal/wire"
)

// pullExpiry and pullHeartbeat are the ordered consumer's pull requests:
// the server sends a heartbeat every pullHeartbeat while it has nothing,
// and nats.go recreates the consumer after two missed ones, so a consumer
// lost with the server that led the stream is replaced within seconds,
// rather than the 10s of nats.go's default heartbeat.
const (
	pullExpiry    = 10 * time.Second
	pullHeartbeat = 2 * time.Second
)

// takeTimeout bounds the JetStream requests of one take on a durable
// Mailbox (the delete, and the look that tells "gone" from "failed").
const takeTimeout = 5 * time.Second

// follower fills a record's buffer from its JetStream stream and then
// follows the stream (RecordConfig.Stream): the durable mode of a record.
//
// On start it looks the stream up, retrying with backoff while NATS or the
// stream is not there, and takes the stream's identity (its name and
// creation time) as the consumer API's instance: every replica and every
// restart numbers values as the stream does, so event ids stay valid
// across them. It then reads the stream with an ordered consumer: a ring
// from max(first, last-capacity+1), the single-slot types from the last
// message; the buffer is restored once the consumer has nothing pending,
// and the consumer then follows new messages. nats.go recreates an ordered
// consumer by itself after a disconnect or a change of the stream's
// leader, resuming after the last message it delivered.
//
// A take on a durable Mailbox deletes the value's message from the stream
// before the value is handed out (see take).
type follower struct {
	name     string
	rc       RecordConfig
	intake   *intake.Intake
	log      *slog.Logger
	failures *logthrottle.Throttle
	// setInstance tells the consumer API the stream's identity.
	setInstance func(string) error
	// retry and maxRetry bound the backoff of the stream's lookup.
	retry, maxRetry time.Duration
	// checkEvery is how often the stream is looked up again once followed;
	// replaced is told when it was deleted and created again meanwhile.
	checkEvery time.Duration
	replaced   func(error)
	// created is the creation time of the stream followed.
	created time.Time

	stream   atomic.Pointer[jetstream.Stream]
	restored atomic.Bool

	mu sync.Mutex
	cc jetstream.ConsumeContext
}

// streamInstance returns the instance id of a stream: its name and
// creation time hashed, the same on every server of a cluster, and new
// when the stream is deleted and created again (its numbering starts
// over).
func streamInstance(name string, created time.Time) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(strconv.FormatInt(created.UnixNano(), 10)))
	return "js-" + strconv.FormatUint(h.Sum64(), 16)
}

// ErrStreamReplaced is the error a buffer process stops with when the
// stream of a durable record was deleted and created again while it
// followed it: the new stream numbers from 1 again, under a new instance,
// which only a fresh restore serves right (the pod restarts).
var ErrStreamReplaced = errors.New("JetStream stream deleted and created again")

// run looks the stream up and starts the ordered consumer, retrying until
// it succeeds or ctx ends, and then watches the stream until ctx ends (see
// watch). The consumer runs until stop.
func (f *follower) run(ctx context.Context, nc *nats.Conn) {
	js, err := jetstream.New(nc)
	if err != nil {
		f.log.Error("JetStream context not created", "error", err.Error())
		return
	}
	wait := f.retry
	for {
		err := f.start(ctx, js)
		if err == nil {
			f.watch(ctx, js)
			return
		}
		if n, ok := f.failures.Allow(); ok {
			f.log.Warn("JetStream stream not followed yet, retrying", "stream", f.name, "error", err.Error(), "failuresSinceLastLog", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, f.maxRetry)
	}
}

// watch looks the stream up every checkEvery until ctx ends. A stream
// created since the one followed is reported to replaced; a stream not
// found, or NATS down, leaves the process serving what it holds (the
// ordered consumer resumes by itself when the stream is back).
func (f *follower) watch(ctx context.Context, js jetstream.JetStream) {
	t := time.NewTicker(f.checkEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := js.Stream(lctx, f.name)
		cancel()
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			if n, ok := f.failures.Allow(); ok {
				f.log.Warn("JetStream stream not found, serving what is held", "stream", f.name, "failuresSinceLastLog", n)
			}
		case err != nil:
			// NATS or JetStream unreachable: the connection's state
			// and reports tell; look again later.
		case !st.CachedInfo().Created.Equal(f.created):
			f.replaced(fmt.Errorf("%w: stream %q, created %s, now %s", ErrStreamReplaced, f.name,
				f.created.UTC().Format(time.RFC3339Nano), st.CachedInfo().Created.UTC().Format(time.RFC3339Nano)))
			return
		}
	}
}

// start makes one attempt at looking the stream up and consuming it.
func (f *follower) start(ctx context.Context, js jetstream.JetStream) error {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := js.Stream(lctx, f.name)
	if err != nil {
		return fmt.Errorf("stream %q: %w", f.name, err)
	}
	info := st.CachedInfo()
	if err := f.setInstance(streamInstance(f.name, info.Created)); err != nil {
		return err
	}
	f.created = info.Created
	f.stream.Store(&st)
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverLastPolicy}
	if f.rc.Type == buffer.TypeSpmcRing {
		// The newest capacity values the stream holds.
		first := max(info.State.FirstSeq, 1)
		if last := info.State.LastSeq; last >= uint64(f.rc.Capacity) {
			first = max(first, last-uint64(f.rc.Capacity)+1)
		}
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first}
	}
	cons, err := st.OrderedConsumer(lctx, cfg)
	if err != nil {
		return fmt.Errorf("ordered consumer on stream %q: %w", f.name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ctx.Err() != nil {
		return nil
	}
	cc, err := cons.Consume(f.handle, jetstream.ConsumeErrHandler(f.consumeError),
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return fmt.Errorf("consume stream %q: %w", f.name, err)
	}
	f.cc = cc
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
		f.markRestored(0)
	}
	return nil
}

// handle takes one message of the stream in.
func (f *follower) handle(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		f.log.Warn("JetStream message without metadata ignored", "stream", f.name, "error", err.Error())
		return
	}
	f.intake.HandleStreamMsg(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}, md.Sequence.Stream, md.Timestamp)
	if md.NumPending == 0 && !f.restored.Load() {
		f.markRestored(md.Sequence.Stream)
	}
}

func (f *follower) markRestored(last uint64) {
	if f.restored.CompareAndSwap(false, true) {
		f.log.Info("Record restored from its JetStream stream", "stream", f.name, "lastSeq", last)
	}
}

// consumeError logs what the ordered consumer reports (it recovers from
// what it can by itself), throttled.
func (f *follower) consumeError(_ jetstream.ConsumeContext, err error) {
	if n, ok := f.failures.Allow(); ok {
		f.log.Warn("JetStream consumer error", "stream", f.name, "error", err.Error(), "failuresSinceLastLog", n)
	}
}

// stop stops consuming; messages on their way are dropped (the stream
// keeps them).
func (f *follower) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cc != nil {
		f.cc.Stop()
		f.cc = nil
	}
}

// take is the durable Mailbox's buffer.WithTake: it deletes the value's
// message from the stream, so that no other replica and no restart hands
// it out again. A delete that fails because the message is not there (the
// stream overwrote it, or another replica took it) is buffer.ErrGone; a
// delete that fails for another reason is looked up, since a delete whose
// answer was lost may have happened: gone then, else the take failed and
// the value stays. A command whose delete happened but whose answer was
// lost is thus handed out by nobody, never by two.
func (f *follower) take(it buffer.Item[wire.Message]) error {
	p := f.stream.Load()
	if p == nil {
		return errors.New("stream not looked up yet")
	}
	st := *p
	ctx, cancel := context.WithTimeout(context.Background(), takeTimeout)
	defer cancel()
	derr := st.DeleteMsg(ctx, it.Seq)
	if derr == nil {
		return nil
	}
	if _, err := st.GetMsg(ctx, it.Seq); errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("%w: message %d of stream %q: %w", buffer.ErrGone, it.Seq, f.name, derr)
	}
	return fmt.Errorf("delete message %d of stream %q: %w", it.Seq, f.name, derr)
}

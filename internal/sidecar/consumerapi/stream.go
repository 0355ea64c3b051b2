package consumerapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/wire"
)

// A stream's buffer. flushBytes is how much a stream writes before it
// flushes even though more values are ready: large enough to amortise the
// syscall under load, small enough to keep the first value of a burst from
// waiting long. A value larger than inlineBytes does not go into the
// buffer: it is written in pieces through it (wire.WriteValueEvent), so
// that the buffer stays within about flushBytes plus one small event, and
// never grows to a large value's size, which it would keep for the
// stream's life. maxBufBytes is a bound on that, in case: a buffer grown
// larger is dropped after a flush.
const (
	flushBytes  = 32 << 10
	inlineBytes = 16 << 10
	initBytes   = 4 << 10
	maxBufBytes = 64 << 10
)

// position is where a stream asked to start.
type position struct {
	oldest   bool   // ?from=oldest
	last     uint64 // ?last=N: the newest N values held (0: not asked)
	afterSet bool   // Last-Event-ID or ?after= was given
	after    uint64 // the sequence number the consumer saw last
	// instance numbered after: the one in the event id, else the
	// Recbuf-Instance header; "" when the client did not say.
	instance string
}

// Reasons of a reset event.
const (
	resetInstance = "instance"
	resetAhead    = "ahead"
)

// parsePosition reads where a stream starts. ?last=N asks for a start of
// its own, so it is refused with ?from= or ?after=, which ask for another;
// but Last-Event-ID wins over it, as over ?after=: it is how a browser's
// EventSource, opened with ?last=N, resumes where it was.
func parsePosition(r *http.Request) (position, error) {
	var p position
	q := r.URL.Query()
	switch from := q.Get("from"); from {
	case "", "next":
	case "oldest":
		p.oldest = true
	default:
		return p, fmt.Errorf("from %s is neither next nor oldest", wire.Quote(from))
	}
	if q.Has("last") {
		v := q.Get("last")
		n, err := strconv.ParseUint(v, 10, 64)
		switch {
		case err != nil || n == 0:
			return p, fmt.Errorf("last %s is not a number of values of at least 1", wire.Quote(v))
		case q.Has("from"):
			return p, errors.New("last and from are two starts: ask for one")
		case q.Has("after"):
			return p, errors.New("last and after are two starts: ask for one (a Last-Event-ID header wins over last)")
		}
		p.last = n
	}
	// Last-Event-ID wins over ?after= and ?last=: a browser's EventSource
	// reconnects to the URL it was opened with (so with the original
	// ?after= or ?last=), adding the header with where it really is.
	v, src := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if v == "" {
		v, src = q.Get("after"), "after"
	}
	if v != "" {
		inst, seq, err := wire.ParseEventID(v)
		if err != nil {
			return p, fmt.Errorf("%s: %w", src, err)
		}
		p.afterSet, p.after, p.instance = true, seq, inst
		p.last = 0
	}
	// The header is for bare numbers, which carry no instance; an id that
	// names its instance says it better.
	if p.instance == "" {
		p.instance = r.Header.Get(wire.HeaderInstance)
	}
	return p, nil
}

// foreign says why p is not a position in the numbering of instance self,
// whose newest value is last: resetInstance when another instance numbered
// it, resetAhead when it is beyond last (no process numbers past its
// newest value, so another one did); "" when it is self's own. A bare
// number without Recbuf-Instance is taken as self's own when self numbered
// that far: it cannot be told apart from self's own value of that number.
//
// With shared (Record.Shared), a position beyond last is self's own too:
// other processes number the same way, and this one has not got there yet.
func (p position) foreign(self string, last uint64, shared bool) string {
	switch {
	case !p.afterSet:
		return ""
	case p.instance != "" && p.instance != self:
		return resetInstance
	case p.after > last && !shared:
		return resetAhead
	default:
		return ""
	}
}

// handleEvents streams a record's values as Server-Sent Events.
//
// Ring: from the next value (default), the oldest retained (?from=oldest),
// or after a sequence number (Last-Event-ID or ?after=) — lossless while
// that sequence's successor is retained, otherwise a lag event with the
// exact gap comes first. SingleLatest: the current value, then newer ones.
// Mailbox: takes values, competing with other readers. On every type, a
// position this process did not number begins the stream with a reset
// event: a ring then starts at its oldest value, the others as without a
// position. A ring also backfills (?last=N): a backfill event with the
// count, then the newest N values it holds (all, when it holds fewer),
// then the live ones; the single-slot types refuse it with 409, since
// their streams begin with the one value they hold anyway.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, rec *record) {
	pos, err := parsePosition(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if typ := rec.Buffer.Type(); pos.last > 0 && typ != buffer.TypeSpmcRing {
		writeError(w, http.StatusConflict, fmt.Sprintf(
			"last is for SpmcRing records; %s is a %s, whose stream begins with the value it holds anyway", rec.Name, typ))
		return
	}
	var (
		opts []buffer.SubscribeOption
		// skipThrough hides values the consumer has seen already
		// (SingleLatest, and a ring behind a shared position).
		skipThrough uint64
		resetEvent  []byte
		reason      string
	)
	instance := s.Instance()
	if pos.afterSet {
		last := rec.Buffer.Stats().LastSeq
		if reason = pos.foreign(instance, last, rec.Shared); reason != "" {
			// The position was numbered by another process (a restart,
			// another replica): say so, rather than skip values silently
			// or wait for a number this process may never reach.
			resetEvent = wire.AppendResetEvent(nil, pos.after, last, reason)
		}
	}
	switch rec.Buffer.Type() {
	case buffer.TypeSpmcRing:
		switch {
		case reason != "":
			// The best we can do is all we have.
			opts = append(opts, buffer.FromOldest())
		case pos.afterSet:
			opts = append(opts, buffer.AfterSeq(pos.after))
			// A shared numbering's position may be ahead of this
			// process (see foreign): the ring then starts after its
			// newest value, and what the consumer has seen is hidden.
			skipThrough = pos.after
		case pos.last > 0:
			opts = append(opts, buffer.Last(pos.last))
		case pos.oldest:
			opts = append(opts, buffer.FromOldest())
		}
	case buffer.TypeSingleLatest:
		if pos.afterSet && reason == "" {
			skipThrough = pos.after
		}
	}

	if !s.streams.acquire() {
		rec.streamsRefused.Add(1)
		writeBusy(w, fmt.Sprintf("this buffer process serves %d streams at once, its most: retry later", s.cfg.MaxStreams))
		return
	}
	defer s.streams.release()
	reader, err := rec.Buffer.Subscribe(opts...)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "record closed")
		return
	}
	defer reader.Close()
	rec.streamsTotal.Add(1)
	rec.streams.Add(1)
	defer rec.streams.Add(-1)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// nginx buffers responses unless told not to.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	st := &stream{
		w:        w,
		rc:       http.NewResponseController(w),
		buf:      make([]byte, 0, initBytes),
		instance: instance,
	}
	st.buf = wire.AppendRetry(st.buf, s.cfg.Retry)
	st.buf = append(st.buf, resetEvent...)
	if bf, ok := reader.(buffer.Backfiller); ok && pos.last > 0 {
		n, last := bf.Backfill()
		st.buf = wire.AppendBackfillEvent(st.buf, n, last)
	}
	if err := st.flush(); err != nil {
		return
	}
	defer st.stopHeartbeat()
	if err := s.pump(r.Context(), st, reader, skipThrough, rec.events()); err != nil && r.Context().Err() == nil {
		// Write errors mean the client went away or stopped reading.
		s.log.Debug("Stream ended", "record", rec.Name, "error", err.Error())
	}
}

// pump writes values as they come, flushing before it waits: the values
// ready go out in one write, flushed when the stream has caught up (or
// every flushBytes). Their events come from the record's cache (events),
// so that the record's streams encode each value once between them, and
// nothing here allocates per value.
func (s *Server) pump(ctx context.Context, st *stream, reader buffer.Reader[wire.Message], skipThrough uint64, events *eventCache) error {
	// Outside the loop: errors.As takes its address, which would make it
	// an allocation per value.
	var lagged *buffer.LaggedError
	for {
		it, err := reader.TryRecv()
		if errors.Is(err, buffer.ErrEmpty) {
			if err := st.flush(); err != nil {
				return err
			}
			it, err = s.wait(ctx, st, reader)
		}
		switch {
		case err == nil:
			if it.Seq <= skipThrough {
				continue
			}
			if len(it.Value.Data) > inlineBytes {
				if err := st.writeLarge(st.instance, &it); err != nil {
					return err
				}
				continue
			}
			st.buf = events.appendEvent(st.buf, st.instance, &it)
		case errors.As(err, &lagged):
			st.buf = wire.AppendLagEvent(st.buf, lagged.Missed)
		case errors.Is(err, buffer.ErrEmpty):
			// A heartbeat was due and sent.
		case errors.Is(err, buffer.ErrClosed):
			st.buf = wire.AppendEndEvent(st.buf, "closed")
			return st.flush()
		default:
			return err
		}
		if len(st.buf) >= flushBytes {
			// More may be ready: write, but flush only once caught up.
			if err := st.write(); err != nil {
				return err
			}
		}
	}
}

// wait blocks for the next value until a heartbeat is due; it then writes
// the heartbeat and returns ErrEmpty.
//
// Its context, whose deadline is when the heartbeat is due, lasts until
// that deadline: a stream that waits after every value (a slow producer)
// must not make one per value. A write in between puts the heartbeat off,
// so a deadline reached may be early: wait then makes a new context for
// the rest, and sends no heartbeat.
func (s *Server) wait(ctx context.Context, st *stream, reader buffer.Reader[wire.Message]) (buffer.Item[wire.Message], error) {
	for {
		due := st.lastWrite.Add(s.cfg.Heartbeat)
		if !time.Now().Before(due) {
			break
		}
		if st.hb == nil || st.hb.Err() != nil {
			st.stopHeartbeat()
			st.hb, st.hbCancel = context.WithDeadline(ctx, due)
		}
		it, err := reader.Recv(st.hb)
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return it, err
		}
	}
	st.buf = append(st.buf, wire.Heartbeat...)
	if err := st.flush(); err != nil {
		return buffer.Item[wire.Message]{}, err
	}
	return buffer.Item[wire.Message]{}, buffer.ErrEmpty
}

// stream is one response being written. Its writer bounds every write
// (see deadlineWriter).
type stream struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	buf       []byte
	lastWrite time.Time
	// instance numbers the stream's event ids, for its whole life.
	instance string
	// hb is wait's context, done when a heartbeat may be due.
	hb       context.Context
	hbCancel context.CancelFunc
}

// stopHeartbeat releases wait's context.
func (st *stream) stopHeartbeat() {
	if st.hbCancel != nil {
		st.hbCancel()
	}
}

// flush writes what the buffer holds and sends it.
func (st *stream) flush() error {
	if len(st.buf) == 0 {
		return nil
	}
	if err := st.write(); err != nil {
		return err
	}
	return st.flushed()
}

// write writes what the buffer holds without flushing: net/http's
// connection buffer keeps the end of it (at most 4 KiB: the CRLF that
// ends the chunk, and what did not fill a buffer's worth) for the next
// write or flush. Flushing every batch costs a write of its own for those
// few bytes, a loopback round of the TCP stack for each, which a stream
// still behind would pay on every flushBytes.
func (st *stream) write() error {
	_, err := st.w.Write(st.buf)
	st.reuse(st.buf)
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// writeLarge writes what the buffer holds and then the value's event, in
// pieces through the buffer, and flushes.
func (st *stream) writeLarge(instance string, it *buffer.Item[wire.Message]) error {
	buf, err := wire.WriteValueEvent(st.w, st.buf, instance, it.Seq, &it.Value)
	st.reuse(buf)
	if err != nil {
		return err
	}
	return st.flushed()
}

// reuse keeps buf, emptied, as the stream's buffer, unless it grew beyond
// maxBufBytes: an idle stream must not hold what one large burst needed.
func (st *stream) reuse(buf []byte) {
	if cap(buf) > maxBufBytes {
		buf = make([]byte, 0, initBytes)
	}
	st.buf = buf[:0]
}

// flushed sends what the connection buffered and notes the time.
func (st *stream) flushed() error {
	if err := st.rc.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	st.lastWrite = time.Now()
	return nil
}

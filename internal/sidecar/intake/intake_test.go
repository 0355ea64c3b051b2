package intake_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/sidecar/intake"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/internal/testutil/poll"
	"github.com/recbuf/recbuf/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newRing(t *testing.T) buffer.Buffer[wire.Message] {
	t.Helper()
	b, err := buffer.New[wire.Message](buffer.TypeSpmcRing, 16)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func headers(kv ...string) nats.Header {
	h := nats.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestHandleMsg(t *testing.T) {
	cases := []struct {
		name       string
		msg        *nats.Msg
		closed     bool
		wantPushed bool
		want       intake.Stats
	}{
		{name: "a message within the size limit is pushed",
			msg: &nats.Msg{Subject: "s", Data: []byte("12345678")}, wantPushed: true, want: intake.Stats{Received: 1}},
		{name: "a message over the size limit is dropped as oversized",
			msg: &nats.Msg{Subject: "s", Data: []byte("123456789")}, want: intake.Stats{Oversized: 1}},
		{name: "device headers are taken along",
			msg:        &nats.Msg{Subject: "s", Data: []byte("{}"), Header: headers(wire.HeaderDevice, "d1", wire.HeaderDeviceSeq, "7")},
			wantPushed: true, want: intake.Stats{Received: 1}},
		{name: "a device sequence that is not a number is malformed",
			msg:  &nats.Msg{Subject: "s", Data: []byte("x"), Header: headers(wire.HeaderDeviceSeq, "seven")},
			want: intake.Stats{Malformed: 1}},
		{name: "a device sequence of zero is malformed",
			msg:  &nats.Msg{Subject: "s", Data: []byte("x"), Header: headers(wire.HeaderDeviceSeq, "0")},
			want: intake.Stats{Malformed: 1}},
		{name: "an over-long device name is malformed",
			msg:  &nats.Msg{Subject: "s", Data: []byte("x"), Header: headers(wire.HeaderDevice, strings.Repeat("d", wire.MaxDeviceLen+1))},
			want: intake.Stats{Malformed: 1}},
		{name: "a message after the buffer closed is dropped as closed",
			msg: &nats.Msg{Subject: "s", Data: []byte("x")}, closed: true, want: intake.Stats{Closed: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			buf := newRing(t)
			r, err := buf.Subscribe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
			in := intake.New(buf, intake.Config{Subject: "s", MaxMessageBytes: 8, Now: func() time.Time { return now },
				Logger: slog.New(slog.DiscardHandler)})
			if tc.closed {
				buf.Close()
			}
			in.HandleMsg(tc.msg)

			got := in.Stats()
			if tc.wantPushed {
				tc.want.LastMessage = now
			}
			if got != tc.want {
				t.Errorf("got stats %+v, want %+v", got, tc.want)
			}
			it, err := r.TryRecv()
			if pushed := err == nil; pushed != tc.wantPushed {
				t.Fatalf("got pushed %v (%v), want %v", pushed, err, tc.wantPushed)
			}
			if !tc.wantPushed {
				return
			}
			m := it.Value
			if string(m.Data) != string(tc.msg.Data) || m.Subject != "s" || !m.Received.Equal(now) {
				t.Errorf("got message %+v, want data %q, subject s, received %v", m, tc.msg.Data, now)
			}
			if m.Device != tc.msg.Header.Get(wire.HeaderDevice) {
				t.Errorf("got device %q, want %q", m.Device, tc.msg.Header.Get(wire.HeaderDevice))
			}
			if m.JSON != wire.IsJSON(tc.msg.Data) {
				t.Errorf("got JSON %v, want %v", m.JSON, !m.JSON)
			}
		})
	}
}

func TestUpstreamGapsAreCountedPerDevice(t *testing.T) {
	in := intake.New(newRing(t), intake.Config{Subject: "s", Logger: slog.New(slog.DiscardHandler)})
	for _, m := range []struct {
		device string
		seq    string
	}{
		{"a", "1"}, {"a", "2"}, {"b", "1"},
		{"a", "5"}, // 3 and 4 lost: 2
		{"b", "3"}, // 2 lost: 1
		{"a", "1"}, // a restarted its numbering: no gap
		{"a", "2"},
	} {
		in.HandleMsg(&nats.Msg{Subject: "s", Data: []byte("x"), Header: headers(wire.HeaderDevice, m.device, wire.HeaderDeviceSeq, m.seq)})
	}
	if got := in.Stats().UpstreamGaps; got != 3 {
		t.Errorf("got %d upstream gap values, want 3", got)
	}
}

// countingHandler counts log records.
type countingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func TestDropsAreLoggedAtABoundedRate(t *testing.T) {
	h := &countingHandler{}
	now := time.Unix(1000, 0)
	in := intake.New(newRing(t), intake.Config{
		Subject: "s", MaxMessageBytes: 1, DropLogInterval: 10 * time.Second,
		Now: func() time.Time { return now }, Logger: slog.New(h),
	})
	oversized := &nats.Msg{Subject: "s", Data: []byte("too big")}
	for range 100 {
		in.HandleMsg(oversized)
	}
	now = now.Add(11 * time.Second)
	in.HandleMsg(oversized)

	if got := in.Stats().Oversized; got != 101 {
		t.Errorf("got %d oversized, want 101", got)
	}
	if len(h.records) != 2 {
		t.Fatalf("got %d log lines, want 2 (the first drop, then one summing the rest)", len(h.records))
	}
	var summed uint64
	h.records[1].Attrs(func(a slog.Attr) bool {
		if a.Key == "droppedSinceLastLog" {
			summed = a.Value.Uint64()
		}
		return true
	})
	if summed != 100 {
		t.Errorf("got droppedSinceLastLog %d in the second line, want 100", summed)
	}
}

func TestDrainTakesInWhatWasPublishedBefore(t *testing.T) {
	srv := natstest.Start(t)
	buf := newRing(t)
	in := intake.New(buf, intake.Config{Subject: "drain.>", QueueGroup: "q", Logger: slog.New(slog.DiscardHandler)})
	nc := srv.Connect()
	if err := in.Start(nc); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	pub := srv.Connect()
	const n = 500
	for i := range n {
		if err := pub.Publish("drain.x", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if got := in.Stats().Received; got != n {
		t.Errorf("got %d received after drain, want %d", got, n)
	}
	if got := buf.Stats().Produced; got != n {
		t.Errorf("got %d produced, want %d", got, n)
	}
}

// BenchmarkHandleMsg is the intake's own cost per message, without NATS.
func BenchmarkHandleMsg(b *testing.B) {
	buf, err := buffer.New[wire.Message](buffer.TypeSpmcRing, 1024)
	if err != nil {
		b.Fatal(err)
	}
	in := intake.New(buf, intake.Config{Subject: "s", Logger: slog.New(slog.DiscardHandler)})
	m := &nats.Msg{Subject: "s", Data: []byte(`{"device":"dev-001","seq":123456,"time":"2026-11-27T06:24:46.925Z","temperature":19.55,"humidity":44.8,"battery":3.625,"x":"xx"}`)}
	b.ReportAllocs()
	for b.Loop() {
		in.HandleMsg(m)
	}
}

// stalledBuffer is a ring whose Push waits until release is closed, so
// that messages pile up in the subscription's pending queue.
type stalledBuffer struct {
	buffer.Buffer[wire.Message]
	release chan struct{}
}

func (b stalledBuffer) Push(m wire.Message) error {
	<-b.release
	return b.Buffer.Push(m)
}

func TestThePendingQueueIsBoundedFromTheMessageSize(t *testing.T) {
	srv := natstest.Start(t)
	in := intake.New(newRing(t), intake.Config{Subject: "bounded", MaxMessageBytes: 5 << 20, Logger: slog.New(slog.DiscardHandler)})
	nc := srv.Connect()
	if err := in.Start(nc); err != nil {
		t.Fatal(err)
	}
	msgs, bytes, err := in.Subscription().PendingLimits()
	if err != nil {
		t.Fatal(err)
	}
	// sizing.PendingLimits: 32768 messages, 8 of the largest (5 MiB) in bytes.
	if msgs != 32768 || bytes != 40<<20 {
		t.Errorf("subscription pending limits: got (%d, %d), want (32768, %d), not nats.go's default", msgs, bytes, 40<<20)
	}
	if st := in.Stats(); st.PendingLimitMessages != msgs || st.PendingLimitBytes != int64(bytes) {
		t.Errorf("Stats: got pending limits (%d, %d), want the subscription's (%d, %d)", st.PendingLimitMessages, st.PendingLimitBytes, msgs, bytes)
	}
}

func TestAFullPendingQueueIsVisibleAndDropsAsSlowConsumer(t *testing.T) {
	srv := natstest.Start(t)
	release := make(chan struct{})
	unstall := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unstall) // even when the test fails before it unstalls
	buf := stalledBuffer{Buffer: newRing(t), release: release}
	in := intake.New(buf, intake.Config{Subject: "stalled", PendingMessages: 4, PendingBytes: 1 << 20,
		Logger: slog.New(slog.DiscardHandler)})
	nc := srv.Connect(nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrSlowConsumer) {
			in.SlowConsumer()
		}
	}))
	if err := in.Start(nc); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	pub := srv.Connect()
	// The first message stalls the handler, three wait behind it (nats.go
	// counts the one in the handler as pending until it returns), and the
	// rest are dropped.
	const n = 20
	for i := range n {
		if err := pub.Publish("stalled", []byte("value "+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	// nats.go reports the slow consumer through its error handler, on a
	// goroutine of its own: the event may come after the drops show.
	poll.Until(t, "the pending queue is full, the rest dropped, and the slow consumer reported", func() bool {
		st := in.Stats()
		return st.PendingMessages == 4 && st.SlowConsumer == n-4 && st.SlowConsumerEvents > 0
	})
	st := in.Stats()
	if st.PendingBytes != int64(4*len("value 1")) || st.PendingLimitMessages != 4 || st.PendingLimitBytes != 1<<20 {
		t.Errorf("Stats: got pending %d bytes, limits (%d, %d); want %d bytes, limits (4, %d)",
			st.PendingBytes, st.PendingLimitMessages, st.PendingLimitBytes, 4*len("value 1"), 1<<20)
	}
	if st.Dropped() != n-4 || st.SlowConsumerEvents == 0 {
		t.Errorf("Stats: got %d dropped and %d slow-consumer events, want %d and at least one", st.Dropped(), st.SlowConsumerEvents, n-4)
	}
	unstall()
	poll.Until(t, "the queue drains into the buffer", func() bool { return in.Stats().Received == 4 })
	if st := in.Stats(); st.PendingMessages != 0 || st.PendingBytes != 0 {
		t.Errorf("Stats after the buffer took the queue: got %d messages, %d bytes pending, want none", st.PendingMessages, st.PendingBytes)
	}
	buf.Close()
}

func TestAMessageLargerThanTheRingsByteBudgetIsDroppedAsOversized(t *testing.T) {
	// The buffer process refuses a budget below MaxMessageBytes, so this
	// cannot come from NATS; were it to, it is counted, not lost silently.
	buf, err := buffer.New(buffer.TypeSpmcRing, 8, buffer.WithMaxBytes(4, func(m wire.Message) int64 { return int64(len(m.Data)) }))
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	in := intake.New(buf, intake.Config{Subject: "s", MaxMessageBytes: 8, Logger: slog.New(slog.DiscardHandler)})
	in.HandleMsg(&nats.Msg{Subject: "s", Data: []byte("123")})
	in.HandleMsg(&nats.Msg{Subject: "s", Data: []byte("12345")})
	if st := in.Stats(); st.Received != 1 || st.Oversized != 1 || st.Closed != 0 {
		t.Errorf("Stats: got %+v, want 1 received and 1 oversized", st)
	}
}

func TestHandleStreamMsg(t *testing.T) {
	b, err := buffer.New[wire.Message](buffer.TypeSpmcRing, 16, buffer.WithExternalSeq[wire.Message]())
	if err != nil {
		t.Fatal(err)
	}
	in := intake.New(b, intake.Config{Subject: "s", MaxMessageBytes: 8, Logger: slog.New(slog.DiscardHandler)})
	stored := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	dev := func(seq string) nats.Header { return headers(wire.HeaderDevice, "d1", wire.HeaderDeviceSeq, seq) }
	in.HandleStreamMsg(&nats.Msg{Subject: "s", Data: []byte("a"), Header: dev("1")}, 10, stored)
	in.HandleStreamMsg(&nats.Msg{Subject: "s", Data: []byte("123456789")}, 11, stored)           // oversized
	in.HandleStreamMsg(&nats.Msg{Subject: "s", Data: []byte("b"), Header: dev("4")}, 12, stored) // 2 upstream gaps
	in.HandleStreamMsg(&nats.Msg{Subject: "s", Data: []byte("dup")}, 12, stored)                 // redelivered: ignored

	st := in.Stats()
	if st.Received != 2 || st.Oversized != 1 || st.UpstreamGaps != 2 || st.Dropped() != 1 {
		t.Fatalf("Stats: got received %d oversized %d gaps %d dropped %d, want 2, 1, 2, 1", st.Received, st.Oversized, st.UpstreamGaps, st.Dropped())
	}
	if !st.LastMessage.Equal(stored) {
		t.Fatalf("LastMessage: got %v, want the stream's time %v", st.LastMessage, stored)
	}
	r, err := b.Subscribe(buffer.AfterSeq(9))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		seq  uint64
		data string
	}{{10, "a"}, {0, ""}, {12, "b"}} {
		it, err := r.TryRecv()
		if want.seq == 0 {
			// 11 was dropped: a hole in the ring, exactly one value missed.
			var lagged *buffer.LaggedError
			if !errors.As(err, &lagged) || lagged.Missed != 1 {
				t.Fatalf("TryRecv: got %v, want a lag of 1", err)
			}
			continue
		}
		if err != nil || it.Seq != want.seq || string(it.Value.Data) != want.data || !it.Value.Received.Equal(stored) {
			t.Fatalf("TryRecv: got %d %q %v %v, want %d %q at the stream's time", it.Seq, it.Value.Data, it.Value.Received, err, want.seq, want.data)
		}
	}
}

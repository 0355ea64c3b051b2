package sidecar_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onsi/gomega"

	"github.com/recbuf/recbuf/pkg/client"
)

// collector runs client.Stream in the background and collects what it gets.
type collector struct {
	values    chan client.Value
	lags      chan uint64
	resets    chan client.Reset
	connected chan client.Connection
	done      chan error
	cancel    context.CancelFunc
}

func stream(t *testing.T, c *client.Client, opts ...client.StreamOption) *collector {
	t.Helper()
	return streamWith(t, c, nil, opts...)
}

// streamWith is stream with a hook called before each value is collected.
func streamWith(t *testing.T, c *client.Client, hook func(client.Value), opts ...client.StreamOption) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	col := &collector{
		values:    make(chan client.Value, 100000),
		lags:      make(chan uint64, 1000),
		resets:    make(chan client.Reset, 10),
		connected: make(chan client.Connection, 100),
		done:      make(chan error, 1),
		cancel:    cancel,
	}
	opts = append(opts,
		client.OnLag(func(n uint64) { col.lags <- n }),
		client.OnReset(func(r client.Reset) { col.resets <- r }),
		client.OnConnect(func(cn client.Connection) { col.connected <- cn }),
		client.WithBackoff(10*time.Millisecond, 50*time.Millisecond),
	)
	go func() {
		col.done <- c.Stream(ctx, client.HandlerFunc(func(_ context.Context, v client.Value) error {
			if hook != nil {
				hook(v)
			}
			col.values <- v
			return nil
		}), opts...)
	}()
	t.Cleanup(func() { col.stop(t) })
	return col
}

// stop ends the stream and waits for Stream to return.
func (c *collector) stop(t *testing.T) {
	t.Helper()
	c.cancel()
	if c.done == nil {
		return
	}
	if err := <-c.done; !errors.Is(err, context.Canceled) {
		t.Errorf("Stream returned %v, want context.Canceled", err)
	}
	c.done = nil
}

func (c *collector) waitConnected(t *testing.T) client.Connection {
	t.Helper()
	select {
	case cn := <-c.connected:
		return cn
	case err := <-c.done:
		t.Fatalf("stream ended before connecting: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("stream did not connect")
	}
	return client.Connection{}
}

// next returns the next value collected.
func (c *collector) next(t *testing.T) client.Value {
	t.Helper()
	select {
	case v := <-c.values:
		return v
	case <-time.After(waitTimeout):
		t.Fatal("no value arrived")
	}
	return client.Value{}
}

// expectValues checks that the next values are seqs with payloads
// "<prefix><seq>".
func (c *collector) expectValues(t *testing.T, prefix string, seqs ...uint64) {
	t.Helper()
	for _, seq := range seqs {
		v := c.next(t)
		if want := prefix + strconv.FormatUint(seq, 10); v.Seq != seq || string(v.Payload) != want {
			t.Fatalf("got value %d %q, want %d %q", v.Seq, v.Payload, seq, want)
		}
	}
}

func seqRange(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestRingDeliversEveryValueInOrder(t *testing.T) {
	ns := natsServer(t)
	sc := start(t, testConfig(ns.URL(), ring("telemetry", 1024)))
	col := stream(t, sc.client(t, "telemetry"))
	if cn := col.waitConnected(t); cn.BufferType != "SpmcRing" || cn.Instance != sc.Instance() {
		t.Errorf("got connection %+v, want a SpmcRing served by %s", cn, sc.Instance())
	}
	publish(t, ns.Connect(), "in.telemetry", "m", 1, 200)
	col.expectValues(t, "m", seqRange(1, 200)...)
}

func TestSingleLatestGivesTheCurrentValueOnly(t *testing.T) {
	ns := natsServer(t)
	sc := start(t, testConfig(ns.URL(), latest("state")))
	c := sc.client(t, "state")
	if _, err := c.Latest(context.Background()); !errors.Is(err, client.ErrNoValue) {
		t.Fatalf("Latest before any value: got %v, want ErrNoValue", err)
	}
	pub := ns.Connect()
	publish(t, pub, "in.state", "s", 1, 10)
	eventually(t, func() (uint64, error) {
		v, err := c.Latest(context.Background())
		return v.Seq, err
	}).Should(gomega.Equal(uint64(10)))

	col := stream(t, c)
	col.waitConnected(t)
	col.expectValues(t, "s", 10)
	publish(t, pub, "in.state", "s", 11, 11)
	col.expectValues(t, "s", 11)
}

func TestMailboxTakeAndOverwrite(t *testing.T) {
	ns := natsServer(t)
	sc := start(t, testConfig(ns.URL(), mailbox("cmd")))
	c := sc.client(t, "cmd")
	publish(t, ns.Connect(), "in.cmd", "c", 1, 5)
	eventually(t, func() float64 { return sc.metric(t, `recbuf_buffer_produced_total{namespace="ns",record="cmd"}`) }).Should(gomega.Equal(5.0))

	v, err := c.Take(context.Background(), time.Second)
	if err != nil || v.Seq != 5 || string(v.Payload) != "c5" {
		t.Fatalf("Take: got %d %q %v, want 5 c5", v.Seq, v.Payload, err)
	}
	if got := sc.metric(t, `recbuf_buffer_overwrites_total{namespace="ns",record="cmd"}`); got != 4 {
		t.Errorf("got %v overwrites, want 4 (values 1-4 replaced unread)", got)
	}
	if _, err := c.Take(context.Background(), 0); !errors.Is(err, client.ErrNoValue) {
		t.Errorf("second Take: got %v, want ErrNoValue", err)
	}
}

func TestSlowConsumerOnASmallRingIsToldExactlyWhatItMissed(t *testing.T) {
	const n = 20000
	ns := natsServer(t)
	sc := start(t, testConfig(ns.URL(), ring("fast", 8)))
	release := make(chan struct{})
	var blocked atomic.Bool
	col := streamWith(t, sc.client(t, "fast"), func(client.Value) {
		// Hold the first value until everything is published: the stream's
		// socket fills up and the ring laps the stream many times.
		if blocked.CompareAndSwap(false, true) {
			<-release
		}
	})
	col.waitConnected(t)
	pad := strings.Repeat("x", 1000)
	pub := ns.Connect()
	for i := 1; i <= n; i++ {
		if err := pub.Publish("in.fast", []byte(pad+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() float64 { return sc.metric(t, `recbuf_buffer_produced_total{namespace="ns",record="fast"}`) }).Should(gomega.Equal(float64(n)))
	close(release)

	var received, missed, lagEvents uint64
	last := uint64(0)
	for last != n {
		select {
		case v := <-col.values:
			if v.Seq <= last {
				t.Fatalf("got seq %d after %d", v.Seq, last)
			}
			last = v.Seq
			received++
		case m := <-col.lags:
			missed += m
			lagEvents++
		case <-time.After(waitTimeout):
			t.Fatalf("stuck at seq %d", last)
		}
	}
	for len(col.lags) > 0 {
		missed += <-col.lags
		lagEvents++
	}
	if received+missed != n {
		t.Errorf("got %d received + %d missed = %d, want %d published", received, missed, received+missed, n)
	}
	if lagEvents == 0 {
		t.Errorf("got no lag event, want some: the consumer was blocked while %d values went through a ring of 8", n)
	}
	if got := sc.metric(t, `recbuf_buffer_lagged_values_total{namespace="ns",record="fast"}`); got != float64(missed) {
		t.Errorf("got lagged values metric %v, want %d", got, missed)
	}
	if got := sc.metric(t, `recbuf_buffer_lag_events_total{namespace="ns",record="fast"}`); got != float64(lagEvents) {
		t.Errorf("got lag events metric %v, want %d", got, lagEvents)
	}
	// The ring of 8 holds the last 8 values: it evicted every other one.
	if got := sc.metric(t, `recbuf_buffer_evicted_total{namespace="ns",record="fast"}`); got != n-8 {
		t.Errorf("got evicted metric %v, want %d", got, n-8)
	}
}

func TestASlowConsumerIsCountedForItsOwnRecordOnly(t *testing.T) {
	ns := natsServer(t)
	sc := start(t, testConfig(ns.URL(), ring("slow", 8), ring("other", 8)))
	// One pending message at most: a burst overflows the subscription's
	// queue, and nats.go reports it as a slow consumer.
	if err := sc.Subscription("slow").SetPendingLimits(1, -1); err != nil {
		t.Fatal(err)
	}
	pub := ns.Connect()
	events := func(record string) float64 {
		return sc.metric(t, `recbuf_intake_slow_consumer_events_total{namespace="ns",record="`+record+`"}`)
	}
	eventually(t, func() float64 {
		publish(t, pub, "in.slow", "v", 1, 1000)
		return events("slow")
	}).Should(gomega.BeNumerically(">=", 1))
	if got := sc.metric(t, `recbuf_intake_dropped_total{namespace="ns",reason="slow_consumer",record="slow"}`); got <= 0 {
		t.Errorf("got %v slow-consumer drops on the slow record, want some", got)
	}
	if got := events("other"); got != 0 {
		t.Errorf("got %v slow-consumer events on the other record, want 0", got)
	}
}

func TestResumingWithTheLastSequence(t *testing.T) {
	ns := natsServer(t)
	sc := start(t, testConfig(ns.URL(), ring("r", 16)))
	c := sc.client(t, "r")
	pub := ns.Connect()

	first := stream(t, c)
	first.waitConnected(t)
	publish(t, pub, "in.r", "v", 1, 5)
	first.expectValues(t, "v", 1, 2, 3, 4, 5)
	first.stop(t)

	// Within capacity: nothing is lost.
	publish(t, pub, "in.r", "v", 6, 15)
	second := stream(t, c, client.After(5))
	if cn := second.waitConnected(t); !cn.Resumed || cn.After != 5 {
		t.Errorf("got connection %+v, want resumed after 5", cn)
	}
	second.expectValues(t, "v", seqRange(6, 15)...)
	second.stop(t)
	if len(second.lags) != 0 {
		t.Errorf("got a lag event resuming within capacity")
	}

	// Beyond capacity: the exact gap, then the oldest retained value.
	publish(t, pub, "in.r", "v", 16, 45)
	third := stream(t, c, client.After(15))
	third.waitConnected(t)
	select {
	case m := <-third.lags:
		// 45 values, 16 retained: 30..45. After 15, values 16..29 are gone.
		if m != 14 {
			t.Errorf("got a gap of %d, want 14", m)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no lag event")
	}
	third.expectValues(t, "v", seqRange(30, 45)...)
}

func TestStreamReconnectsAndResumesAfterTheSidecarRestarts(t *testing.T) {
	ns := natsServer(t)
	cfg := testConfig(ns.URL(), ring("r", 16))
	first := start(t, cfg)
	// The restarted process must listen where the first one did.
	cfg.HTTPAddr = first.HTTPAddr()
	c := first.client(t, "r")
	col := stream(t, c)
	col.waitConnected(t)
	pub := ns.Connect()
	publish(t, pub, "in.r", "a", 1, 3)
	col.expectValues(t, "a", 1, 2, 3)

	first.stop(t)
	second := start(t, cfg)
	cn := col.waitConnected(t)
	if cn.Instance != second.Instance() || !cn.Resumed || cn.After != 3 {
		t.Errorf("got reconnection %+v, want resumed after 3 at instance %s", cn, second.Instance())
	}
	// The new process numbers from 1 again: the stream is told, and starts
	// at the oldest value the new process has.
	select {
	case r := <-col.resets:
		if r.Reason != "instance" || r.After != 3 {
			t.Errorf("got reset %+v, want reason instance after 3", r)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no reset event")
	}
	publish(t, pub, "in.r", "b", 1, 2)
	col.expectValues(t, "b", 1, 2)
}

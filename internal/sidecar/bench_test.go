package sidecar_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/sidecar"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/sidecar/intake"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/internal/testutil/poll"
	"github.com/recbuf/recbuf/internal/wire"
	"github.com/recbuf/recbuf/pkg/client"
)

// benchWait bounds each wait of a benchmark, whose b.N can be large.
const benchWait = time.Minute

// benchPayload is a typical telemetry reading, 128 bytes of JSON.
var benchPayload = []byte(`{"device":"dev-001","seq":123456,"time":"2026-11-27T06:24:46.925Z","temperature":19.55,"humidity":44.8,"battery":3.625,"x":"xx"}`)

func publishN(b *testing.B, nc *nats.Conn, subject string, n int) {
	b.Helper()
	for range n {
		if err := nc.Publish(subject, benchPayload); err != nil {
			b.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIngest publishes b.N messages to an embedded NATS server and
// waits until the last one is taken in: by a plain nats.go subscriber that
// only counts (the floor), and by the sidecar's intake pushing into a ring.
func BenchmarkIngest(b *testing.B) {
	b.Run("raw-nats-subscriber", func(b *testing.B) {
		srv := natstest.Start(b)
		var got atomic.Int64
		sub := srv.Connect()
		if _, err := sub.Subscribe("bench", func(*nats.Msg) { got.Add(1) }); err != nil {
			b.Fatal(err)
		}
		if err := sub.Flush(); err != nil {
			b.Fatal(err)
		}
		pub := srv.Connect()
		b.SetBytes(int64(len(benchPayload)))
		b.ResetTimer()
		publishN(b, pub, "bench", b.N)
		poll.UntilWithin(b, benchWait, "the subscriber got every message", func() bool { return got.Load() == int64(b.N) })
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("sidecar-intake-ring", func(b *testing.B) {
		srv := natstest.Start(b)
		buf, err := buffer.New[wire.Message](buffer.TypeSpmcRing, 1024)
		if err != nil {
			b.Fatal(err)
		}
		in := intake.New(buf, intake.Config{Subject: "bench", Logger: slog.New(slog.DiscardHandler)})
		sub := srv.Connect()
		if err := in.Start(sub); err != nil {
			b.Fatal(err)
		}
		if err := sub.Flush(); err != nil {
			b.Fatal(err)
		}
		pub := srv.Connect()
		b.SetBytes(int64(len(benchPayload)))
		b.ResetTimer()
		publishN(b, pub, "bench", b.N)
		poll.UntilWithin(b, benchWait, "the intake took every message in", func() bool { return buf.Stats().Produced == uint64(b.N) })
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// flowControlled pushes n values through push, never more than window
// ahead of what the consumer has received, so that the benchmark measures
// delivery and not loss.
func flowControlled(b *testing.B, n, window int, received *atomic.Int64, push func()) {
	b.Helper()
	for i := range n {
		if i-int(received.Load()) >= window {
			poll.UntilWithin(b, benchWait, "the consumer is back within the window", func() bool { return i-int(received.Load()) < window })
		}
		push()
	}
	poll.UntilWithin(b, benchWait, "the consumer received every value", func() bool { return received.Load() == int64(n) })
}

// streamTo runs a pkg/client stream that counts values and lags, and
// returns once it is connected.
func streamTo(b *testing.B, url string, received, missed *atomic.Int64) {
	b.Helper()
	c, err := client.New(url)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	connected := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Stream(ctx, client.HandlerFunc(func(context.Context, client.Value) error {
			received.Add(1)
			return nil
		}),
			client.OnConnect(func(client.Connection) { close(connected) }),
			client.OnLag(func(n uint64) { missed.Add(int64(n)) }))
	}()
	b.Cleanup(func() { cancel(); <-done })
	<-connected
}

// BenchmarkSSEDelivery pushes b.N values straight into a ring and measures
// their delivery over SSE to one pkg/client consumer (which decodes every
// envelope).
func BenchmarkSSEDelivery(b *testing.B) {
	const capacity = 1 << 16
	buf, err := buffer.New[wire.Message](buffer.TypeSpmcRing, capacity)
	if err != nil {
		b.Fatal(err)
	}
	api, err := consumerapi.New(consumerapi.Config{Logger: slog.New(slog.DiscardHandler)}, consumerapi.Record{Name: "r", Buffer: buf})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(api)
	b.Cleanup(func() { buf.Close(); srv.Close() })
	var received, missed atomic.Int64
	streamTo(b, srv.URL+"/v1/records/r", &received, &missed)
	msg := wire.Message{Data: benchPayload, Received: time.Now(), Subject: "bench", JSON: true}
	b.SetBytes(int64(len(benchPayload)))
	b.ReportAllocs()
	b.ResetTimer()
	flowControlled(b, b.N, capacity/2, &received, func() { _ = buf.Push(msg) })
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if missed.Load() != 0 {
		b.Fatalf("lost %d values", missed.Load())
	}
}

// BenchmarkEndToEnd publishes b.N messages on NATS and measures their
// arrival at one pkg/client consumer of a running sidecar.
func BenchmarkEndToEnd(b *testing.B) {
	const capacity = 1 << 16
	srv := natstest.Start(b)
	cfg := testConfig(srv.URL(), ring("r", capacity))
	ctx, cancel := context.WithCancel(context.Background())
	sc, err := sidecar.Start(ctx, cfg)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); _ = sc.Wait() })
	var received, missed atomic.Int64
	streamTo(b, sc.RecordURL("r"), &received, &missed)
	pub := srv.Connect()
	b.SetBytes(int64(len(benchPayload)))
	b.ResetTimer()
	flowControlled(b, b.N, capacity/2, &received, func() {
		if err := pub.Publish("in.r", benchPayload); err != nil {
			b.Fatal(err)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if missed.Load() != 0 {
		b.Fatalf("lost %d values", missed.Load())
	}
}

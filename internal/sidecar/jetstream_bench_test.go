package sidecar_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/recbuf/recbuf/internal/sidecar"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/internal/testutil/poll"
)

// benchJS is a NATS server with JetStream and the stream of a ring of
// capacity values, as the manager makes it.
func benchJS(b *testing.B, capacity int) (*natstest.Server, jetstream.JetStream, sidecar.RecordConfig) {
	b.Helper()
	srv := natstest.Start(b, natstest.WithJetStream(b))
	js, err := jetstream.New(srv.Connect())
	if err != nil {
		b.Fatal(err)
	}
	rc := ring("r", capacity)
	cfg := streamConfig(rc)
	if _, err := js.CreateStream(context.Background(), cfg); err != nil {
		b.Fatal(err)
	}
	rc.Stream = cfg.Name
	return srv, js, rc
}

// jsPublishN publishes n messages asynchronously and waits until JetStream
// has acknowledged every one.
func jsPublishN(b *testing.B, js jetstream.JetStream, subject string, n int) {
	b.Helper()
	for range n {
		if _, err := js.PublishAsync(subject, benchPayload); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(benchWait):
		b.Fatalf("JetStream did not acknowledge %d messages within %s", n, benchWait)
	}
}

// rawOrdered consumes the stream with a plain nats.go ordered consumer from
// its first message, counting them in got and keeping the newest stream
// sequence in last, and stops when the benchmark ends.
func rawOrdered(b *testing.B, js jetstream.JetStream, stream string, got, last *atomic.Int64) {
	b.Helper()
	cons, err := js.OrderedConsumer(context.Background(), stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		got.Add(1)
		if md, err := m.Metadata(); err == nil {
			last.Store(int64(md.Sequence.Stream))
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cc.Stop)
}

func startBench(b *testing.B, cfg sidecar.Config) *sidecar.Sidecar {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sc, err := sidecar.Start(ctx, cfg)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	b.Cleanup(func() { cancel(); _ = sc.Wait() })
	return sc
}

// BenchmarkJetStreamIngest publishes b.N messages into a ring's stream
// (acknowledged) and waits until the last one is taken in: by a plain
// nats.go ordered consumer that only counts (the floor), and by a buffer
// process following the stream into its ring. The ring and its stream hold
// b.N values, so that every message is read (a small stream evicts what a
// consumer has not read yet while the publisher runs ahead, and the
// benchmark would measure the publisher; evicted-unread/op says so).
func BenchmarkJetStreamIngest(b *testing.B) {
	b.Run("raw-jetstream-ordered-consumer", func(b *testing.B) {
		_, js, rc := benchJS(b, b.N)
		var got, last atomic.Int64
		rawOrdered(b, js, rc.Stream, &got, &last)
		b.SetBytes(int64(len(benchPayload)))
		b.ResetTimer()
		jsPublishN(b, js, rc.Subject, b.N)
		poll.UntilWithin(b, benchWait, "the consumer reached the last message", func() bool { return last.Load() == int64(b.N) })
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.ReportMetric(float64(int64(b.N)-got.Load())/float64(b.N), "evicted-unread/op")
	})
	b.Run("sidecar-persistent-ring", func(b *testing.B) {
		srv, js, rc := benchJS(b, b.N)
		sc := startBench(b, testConfig(srv.URL(), rc))
		poll.UntilWithin(b, benchWait, "the buffer process is ready", sc.Ready)
		b.SetBytes(int64(len(benchPayload)))
		b.ResetTimer()
		jsPublishN(b, js, rc.Subject, b.N)
		poll.UntilWithin(b, benchWait, "the ring took the last message in", func() bool { return sc.BufferStats("r").LastSeq == uint64(b.N) })
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.ReportMetric(float64(uint64(b.N)-sc.BufferStats("r").Produced)/float64(b.N), "evicted-unread/op")
	})
}

// BenchmarkJetStreamRestore stores b.N messages in a ring's stream (of
// capacity b.N), then measures reading them all back: a plain nats.go
// ordered consumer that counts, and a buffer process started on the
// stream until it is ready (restored).
func BenchmarkJetStreamRestore(b *testing.B) {
	b.Run("raw-jetstream-ordered-consumer", func(b *testing.B) {
		_, js, rc := benchJS(b, b.N)
		jsPublishN(b, js, rc.Subject, b.N)
		var got, last atomic.Int64
		b.SetBytes(int64(len(benchPayload)))
		b.ResetTimer()
		rawOrdered(b, js, rc.Stream, &got, &last)
		poll.UntilWithin(b, benchWait, "the consumer got every message", func() bool { return got.Load() == int64(b.N) })
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("sidecar-persistent-ring", func(b *testing.B) {
		srv, js, rc := benchJS(b, b.N)
		jsPublishN(b, js, rc.Subject, b.N)
		b.SetBytes(int64(len(benchPayload)))
		b.ResetTimer()
		sc := startBench(b, testConfig(srv.URL(), rc))
		poll.UntilWithin(b, benchWait, "the buffer process restored every message", sc.Ready)
		b.StopTimer()
		if got := sc.BufferStats("r").Produced; got != uint64(b.N) {
			b.Fatalf("restored %d values, want %d", got, b.N)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

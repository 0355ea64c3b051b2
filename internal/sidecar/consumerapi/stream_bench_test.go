package consumerapi_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/wire"
)

// benchPayload is a typical telemetry reading, 128 bytes of JSON.
var benchPayload = []byte(`{"device":"dev-001","seq":123456,"time":"2026-11-27T06:24:46.925Z","temperature":19.55,"humidity":44.8,"battery":3.625,"x":"xx"}`)

// BenchmarkStreamFanout pushes values into a ring that N streams read over
// loopback HTTP; clients only count value events, into a buffer of their
// own, so what allocates is the server. One op is one value, delivered to
// every stream; the producer pushes bursts of 64 and waits until every
// stream has the burst. allocs/event is the process's allocations per
// value per stream, cpu-ns/event its CPU time per value per stream.
func BenchmarkStreamFanout(b *testing.B) {
	for _, consumers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("consumers=%d", consumers), func(b *testing.B) { benchFanout(b, consumers) })
	}
}

func benchFanout(b *testing.B, consumers int) {
	ring, err := buffer.New[wire.Message](buffer.TypeSpmcRing, 1024)
	if err != nil {
		b.Fatal(err)
	}
	api, err := consumerapi.New(consumerapi.Config{Logger: slog.New(slog.DiscardHandler), MaxRequestsPerClient: 1000, MaxStreams: 1000},
		consumerapi.Record{Name: "ring", Subject: "devices.telemetry", Buffer: ring})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api)
	srv.Config.ConnContext = consumerapi.ConnContext
	srv.Start()
	defer srv.Close()
	defer ring.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	counts := make([]atomic.Int64, consumers)
	var wg sync.WaitGroup
	for i := range consumers {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v1/records/ring/events", nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		// Read up to the retry field: the stream has subscribed.
		one := make([]byte, 1)
		for one[0] != '\n' {
			if _, err := resp.Body.Read(one); err != nil {
				b.Fatal(err)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { _ = resp.Body.Close() }()
			countEvents(resp.Body, &counts[i])
		}()
	}
	defer wg.Wait()
	defer cancel()

	const burst = 64
	now := time.Now()
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(burst, b.N-done)
		for range n {
			if err := ring.Push(wire.Message{Data: benchPayload, Received: now, Subject: "devices.telemetry", JSON: true}); err != nil {
				b.Fatal(err)
			}
		}
		done += n
		for i := range counts {
			for counts[i].Load() < int64(done) {
				if ctx.Err() != nil {
					b.Fatal("stream ended")
				}
				runtime.Gosched()
			}
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms1)
	events := float64(b.N) * float64(consumers)
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/events, "allocs/event")
	b.ReportMetric(float64(cpu.Nanoseconds())/events, "cpu-ns/event")
}

// countEvents counts value events ("\nid: ") on a stream without
// allocating.
func countEvents(body interface{ Read([]byte) (int, error) }, n *atomic.Int64) {
	const carry = 4
	pat := []byte("\nid: ")
	buf := make([]byte, 64<<10)
	k := 0
	for {
		m, err := body.Read(buf[k:])
		if m > 0 {
			chunk := buf[:k+m]
			n.Add(int64(bytes.Count(chunk, pat)))
			k = copy(buf, chunk[max(0, len(chunk)-carry):])
		}
		if err != nil {
			return
		}
	}
}

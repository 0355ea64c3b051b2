package statusagg

import (
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/internal/testutil/poll"
)

// Bounds of the flood: 3 million reports, or as many as fit in the time
// (the race detector slows publishing by an order of magnitude).
// RECBUF_FLOOD_REPORTS changes the count.
const (
	floodReports  = 3_000_000
	floodDuration = 25 * time.Second
	// floodHeapBound is how much the heap may grow over the flood: the
	// reports in flight are bounded by the subscription's pending limits
	// and garbage once handled, so what stays is the genuine Record's.
	floodHeapBound = 16 << 20
)

// TestAFloodOfForeignReportsLeavesMemoryBounded publishes, on a loopback
// NATS and as fast as one connection can, reports with random namespaces,
// Records and pod names, some signed with a random key, some naming the
// genuine Record from pods it does not have. Afterwards the Collector's
// heap (after GC) has grown by less than floodHeapBound, and the genuine
// Record's aggregate is its own pod's report alone.
func TestAFloodOfForeignReportsLeavesMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood of reports takes tens of seconds")
	}
	total := floodReports
	if s := os.Getenv("RECBUF_FLOOD_REPORTS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("RECBUF_FLOOD_REPORTS=%q: %v", s, err)
		}
		total = n
	}
	srv := natstest.Start(t)
	c := startCollector(t, Options{URL: srv.URL(), StaleAfter: time.Hour, Interval: 100 * time.Millisecond}, nil)
	poll.Until(t, "the collector to connect", func() bool { return c.State().Connected })
	c.Admit(recA, Identity{UID: "uid-a", Key: testKey, Pods: []string{"a-pod"}})
	nc := srv.Connect()
	genuine := rep(recA, "uid-a", "a-pod", 42)
	publish(t, nc, genuine)
	poll.Until(t, "the genuine report", func() bool { return c.Aggregate(recA, "uid-a").Pods == 1 })
	heapBefore := heapAfterGC()

	flood, err := nats.Connect(srv.URL(), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	rnd := rand.New(rand.NewPCG(1, 2))
	name := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(rnd.IntN(26))
		}
		return string(b)
	}
	start := time.Now()
	sent := 0
	for ; sent < total && time.Since(start) < floodDuration; sent++ {
		ns, record, pod := name(8), name(8), name(12)
		if sent%3 == 0 {
			// The genuine Record, from pods it does not have.
			ns, record = recA.Namespace, recA.Name
		}
		m := nats.NewMsg(report.Subject(prefix, ns, record, pod))
		m.Data = []byte(`{"namespace":"` + ns + `","record":"` + record + `","recordUID":"uid-a","pod":"` + pod +
			`","counters":{"produced":999999999}}`)
		if sent%2 == 0 {
			m.Header.Set(report.SignatureHeader, name(64))
		}
		if err := flood.PublishMsg(m); err != nil {
			t.Fatalf("publishing report %d: %v", sent, err)
		}
	}
	if err := flood.FlushTimeout(30 * time.Second); err != nil {
		t.Fatalf("flushing the flood: %v", err)
	}
	took := time.Since(start)
	// The genuine pod reports again; once that is in, the flood before it
	// has been handled (one subscription delivers in order).
	// It is sent again until it is in: a Collector that fell behind drops
	// the oldest pending messages, as it would for the genuine ones.
	genuine.Counters.Produced = 43
	poll.UntilWithin(t, time.Minute, "the genuine report after the flood", func() bool {
		genuine.Time = time.Now()
		publish(t, nc, genuine)
		return c.Aggregate(recA, "uid-a").Counters.Produced == 43
	})
	heapAfter := heapAfterGC()
	t.Logf("flood: %d reports in %v (%.0f/s); heap after GC %.1f MiB before, %.1f MiB after",
		sent, took.Round(time.Millisecond), float64(sent)/took.Seconds(), mib(heapBefore), mib(heapAfter))

	if a := c.Aggregate(recA, "uid-a"); a.Pods != 1 || a.PodReports[0].Pod != "a-pod" || a.Counters.Produced != 43 {
		t.Errorf("got the genuine Record's aggregate %+v, want its own pod's report alone (produced 43)", a)
	}
	if grown := int64(heapAfter) - int64(heapBefore); grown > floodHeapBound {
		t.Errorf("got the heap grown by %.1f MiB over %d reports, want at most %.1f MiB",
			mib(uint64(grown)), sent, mib(floodHeapBound))
	}
}

func heapAfterGC() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

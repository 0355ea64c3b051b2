package sidecar_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/recbuf/recbuf/internal/testutil/poll"
)

// rawStream is a stream read (or not) by hand.
type rawStream struct {
	br *bufio.Reader
}

// openRaw opens the stream at url and returns once it is established,
// without reading it. A stream that stalls fails the test after
// waitTimeout.
func openRaw(t *testing.T, hc *http.Client, url string) *rawStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: got status %d, want 200", url, resp.StatusCode)
	}
	return &rawStream{br: bufio.NewReaderSize(resp.Body, 32<<10)}
}

// longestLineUntil reads lines until one starts with stop and returns the
// length of the longest one (its line break included), without holding
// more than the reader's buffer.
func (s *rawStream) longestLineUntil(t *testing.T, stop string) int {
	t.Helper()
	longest := 0
	for {
		n, first := 0, ""
		for {
			chunk, err := s.br.ReadSlice('\n')
			if n == 0 {
				first = string(chunk[:min(len(chunk), len(stop))])
			}
			n += len(chunk)
			if err == nil {
				break
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				t.Fatalf("reading the stream: %v", err)
			}
		}
		longest = max(longest, n)
		if first == stop {
			return longest
		}
	}
}

// heapAfterGC is the live heap.
func heapAfterGC() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// above is how much a exceeds b, 0 if it does not.
func above(a, b uint64) uint64 { return a - min(a, b) }

const mib = 1 << 20

// TestALargeJSONValueToManyStreamsCostsAboutItsSizeOnce sends a JSON
// value of 1 MiB, almost all line breaks, to 40 streams. On the wire each
// event is the payload's size (a "data:" field per line made it 7 MiB).
// Once every stream has taken the value from the ring, before and after
// the clients read it, the process holds the value once and a bounded
// piece per stream, not a buffer of its size per stream.
func TestALargeJSONValueToManyStreamsCostsAboutItsSizeOnce(t *testing.T) {
	const streams = 40
	ns := natsServer(t)
	sc := start(t, testConfig(ns.URL(), ring("big", 4)))
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	clients := make([]*rawStream, streams)
	for i := range clients {
		clients[i] = openRaw(t, hc, sc.RecordURL("big")+"/events")
	}
	base := heapAfterGC()

	payload := "[" + strings.Repeat("\n", mib-8) + "1]"
	pub := ns.Connect()
	if err := pub.Publish("in.big", []byte(payload)); err != nil {
		t.Fatal(err)
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "every stream has the value from the ring", func() bool {
		return sc.metric(t, `recbuf_buffer_delivered_total{namespace="ns",record="big"}`) == streams
	})
	// The clients have read nothing yet; what the kernel's socket buffers
	// do not hold is the process's.
	sending := above(heapAfterGC(), base)

	var longest int
	for _, c := range clients {
		// The event's data line, then the empty line that ends it.
		longest = max(longest, c.longestLineUntil(t, "data: "))
		if l := c.longestLineUntil(t, "\n"); l != 1 {
			t.Fatalf("got a line of %d bytes after the data line, want the empty line that ends the event", l)
		}
	}
	retained := above(heapAfterGC(), base)
	t.Logf("payload %d bytes; longest line on the wire %d bytes; heap above the idle streams': %.1f MiB once %d streams had the value, %.1f MiB after their clients read it",
		len(payload), longest, float64(sending)/mib, streams, float64(retained)/mib)

	if limit := len(payload) + 512; longest > limit {
		t.Errorf("got a data line of %d bytes for a payload of %d, want at most %d", longest, len(payload), limit)
	}
	// The value is held once, by the ring; a stream writes it in pieces
	// of 32 KiB. 8 MiB leaves room for NATS's buffers and the clients'.
	const limit = 8 * mib
	if sending > limit {
		t.Errorf("got %.1f MiB more heap while %d streams were sending a 1 MiB value, want at most %d MiB",
			float64(sending)/mib, streams, limit/mib)
	}
	if retained > limit {
		t.Errorf("got %.1f MiB more heap after %d streams sent a 1 MiB value, want at most %d MiB: streams keep buffers of its size",
			float64(retained)/mib, streams, limit/mib)
	}
}

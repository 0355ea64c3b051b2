package sidecar_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

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

// TestOverlongHeadersAreRefusedEarly: the consumer API reads at most
// 16 KiB of request header (and the little net/http adds), and refuses
// more with 431 before the header even ends, instead of reading up to
// net/http's default of 1 MiB per connection.
func TestOverlongHeadersAreRefusedEarly(t *testing.T) {
	ns := natsServer(t)
	sc := start(t, testConfig(ns.URL(), ring("r", 4)))
	cases := []struct {
		name string
		// header is the value of one header field; the request ends after
		// it unless unterminated.
		header       int
		unterminated bool
		wantStatus   int
	}{
		{name: "a request with 8 KiB of header is served", header: 8 << 10, wantStatus: http.StatusOK},
		{name: "a header just over 16 KiB is refused", header: 21 << 10, wantStatus: http.StatusRequestHeaderFieldsTooLarge},
		{name: "a 2 MiB header is refused before it ends", header: 2 << 20, unterminated: true, wantStatus: http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", sc.HTTPAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close() }()
			if err := c.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
				t.Fatal(err)
			}
			req := "GET /v1/records HTTP/1.1\r\nHost: test\r\nX-Big: " + strings.Repeat("a", tc.header)
			if !tc.unterminated {
				req += "\r\n\r\n"
			}
			// The server answers while the client still sends; a client
			// that only read after sending would deadlock on full buffers.
			sent := make(chan error, 1)
			go func() {
				_, err := io.WriteString(c, req)
				sent <- err
			}()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("got status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			// Unblock a sender the server stopped reading. Whether its write
			// failed depends on how much the kernel's buffers took.
			_ = c.Close()
			if err := <-sent; err != nil {
				t.Logf("the client's write ended with: %v", err)
			}
		})
	}
}

// TestStreamsAndTakesBeyondTheCapAreRefused: a process serves at most
// MaxStreams streams and MaxTakes takes at once, over all its records; one
// more is refused at once with 503 and Retry-After, counted by kind, and
// served again once a place is free.
func TestStreamsAndTakesBeyondTheCapAreRefused(t *testing.T) {
	ns := natsServer(t)
	cfg := testConfig(ns.URL(), ring("r", 4), mailbox("m"))
	cfg.MaxStreams, cfg.MaxTakes = 2, 1
	sc := start(t, cfg)
	refused := func(kind string) float64 {
		return sc.metric(t, `recbuf_consumer_refused_total{kind="`+kind+`",namespace="ns",record="m"}`)
	}
	expectBusy := func(method, url string) {
		t.Helper()
		// A stream that is not refused never ends: read what comes at once.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s %s: got %d, Retry-After %q, body %s; want 503 with Retry-After and a JSON error",
				method, url, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}

	first := openSSE(t, sc.RecordURL("r")+"/events", "")
	openSSE(t, sc.RecordURL("r")+"/events", "")
	// The cap is the process's: a stream of another record is one too many.
	expectBusy(http.MethodGet, sc.RecordURL("m")+"/events")
	if got := refused("stream"); got != 1 {
		t.Errorf("got %v streams refused, want 1", got)
	}
	first.close()
	poll.Until(t, "the closed stream's place is free", func() bool {
		return sc.metric(t, `recbuf_consumer_streams{namespace="ns",record="r"}`) == 1
	})
	openSSE(t, sc.RecordURL("m")+"/events", "").close()

	taken := make(chan error, 1)
	go func() {
		resp, err := http.Post(sc.RecordURL("m")+"/take?timeout=20s", "", nil)
		if err == nil {
			err = resp.Body.Close()
		}
		taken <- err
	}()
	poll.Until(t, "a take waits", func() bool {
		return sc.metric(t, `recbuf_consumer_takes_waiting{namespace="ns",record="m"}`) == 1
	})
	expectBusy(http.MethodPost, sc.RecordURL("m")+"/take?timeout=0")
	if got := refused("take"); got != 1 {
		t.Errorf("got %v takes refused, want 1", got)
	}
	publish(t, ns.Connect(), "in.m", "c", 1, 1)
	if err := <-taken; err != nil {
		t.Fatal(err)
	}
}

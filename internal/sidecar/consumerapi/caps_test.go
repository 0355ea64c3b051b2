package consumerapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/testutil/poll"
	"github.com/recbuf/recbuf/internal/wire"
)

// pushLarge makes the ring's latest value 1 MiB of non-JSON bytes (1.4 MiB
// as an envelope), so that an answer fills a connection whose client does
// not read (see dialNonReader).
func pushLarge(t *testing.T, f *fixture) {
	t.Helper()
	if err := f.ring.Push(wire.Message{Data: bytes.Repeat([]byte{0xff}, 1<<20), Subject: "s"}); err != nil {
		t.Fatal(err)
	}
}

// getFrom GETs path from the fixture with a client whose connections come
// from the loopback address local, and returns the status and Retry-After.
func getFrom(t *testing.T, f *fixture, local, path string) (int, string) {
	t.Helper()
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(f.srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestOneCapHoldsEveryConsumerRequest is the attack: with
// MaxStreams 1, never-reading /latest clients were all served. Now
// MaxRequests clients hold every slot, and one more request of any kind,
// latest, info or list, is refused with 503 and Retry-After, and counted.
func TestOneCapHoldsEveryConsumerRequest(t *testing.T) {
	const maxRequests = 20
	f := newFixture(t, consumerapi.Config{MaxStreams: 1, MaxRequests: maxRequests, MaxRequestsPerClient: 1000, WriteTimeout: time.Minute})
	pushLarge(t, f)
	for range maxRequests {
		dialNonReader(t, f.srv.Listener.Addr().String(), "GET /v1/records/ring/latest HTTP/1.1\r\nHost: test\r\n\r\n")
	}
	poll.Until(t, "every never-reading client is served", func() bool { return f.api.Stats("ring").LatestTotal == maxRequests })

	for _, path := range []string{"/v1/records/ring/latest", "/v1/records/ring", "/v1/records", "/v1/records/ring/events"} {
		t.Run(fmt.Sprintf("one more GET %s is refused", path), func(t *testing.T) {
			before := f.api.Stats("ring").RequestsRefused
			status, retry := getFrom(t, f, "127.0.0.1", path)
			if status != http.StatusServiceUnavailable || retry == "" {
				t.Errorf("got status %d, Retry-After %q, want 503 with a Retry-After", status, retry)
			}
			if got := f.api.Stats("ring").RequestsRefused; got != before+1 {
				t.Errorf("got %d requests refused, want %d", got, before+1)
			}
		})
	}
	if got := f.api.Stats("ring").LatestTotal; got != maxRequests {
		t.Errorf("got %d latest served, want %d: a refused request was served too", got, maxRequests)
	}
}

// TestOneClientAddressCannotTakeEverySlot: a client address holding
// MaxRequestsPerClient requests is refused one more, while another
// address is still served.
func TestOneClientAddressCannotTakeEverySlot(t *testing.T) {
	const perClient = 5
	f := newFixture(t, consumerapi.Config{MaxRequests: 100, MaxRequestsPerClient: perClient, WriteTimeout: time.Minute})
	pushLarge(t, f)
	for range perClient {
		dialNonReader(t, f.srv.Listener.Addr().String(), "GET /v1/records/ring/latest HTTP/1.1\r\nHost: test\r\n\r\n")
	}
	poll.Until(t, "the client's requests are served", func() bool { return f.api.Stats("ring").LatestTotal == perClient })

	tests := []struct {
		name   string
		local  string
		status int
	}{
		{"the same address is refused one more", "127.0.0.1", http.StatusServiceUnavailable},
		{"another address is served", "127.0.0.2", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.api.Stats("ring").ClientRefused
			status, retry := getFrom(t, f, tt.local, "/v1/records/ring")
			if status != tt.status {
				t.Fatalf("got status %d, want %d", status, tt.status)
			}
			refused := f.api.Stats("ring").ClientRefused - before
			if tt.status == http.StatusServiceUnavailable && (retry == "" || refused != 1) {
				t.Errorf("got Retry-After %q and %d refusals counted, want a Retry-After and 1", retry, refused)
			}
			if tt.status == http.StatusOK && refused != 0 {
				t.Errorf("got %d refusals counted, want none", refused)
			}
		})
	}
}

// TestAnAnswerThatIsNoStreamHasATotalDeadline: a client that reads a
// large answer a little at a time makes progress on every write, so a
// deadline per write never lets it go; the whole answer has WriteTimeout.
func TestAnAnswerThatIsNoStreamHasATotalDeadline(t *testing.T) {
	const writeTimeout = time.Second
	f := newFixture(t, consumerapi.Config{WriteTimeout: writeTimeout})
	pushLarge(t, f)
	c, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	// A fixed receive buffer: the kernel would otherwise take in the whole
	// answer at once.
	if err := c.(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	// Connection: close ends the answer with EOF when it is whole.
	if _, err := io.WriteString(c, "GET /v1/records/ring/latest HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	begun := time.Now()
	// 8 KiB every 50 ms, 160 KiB/s: each write of wire.PieceBytes (32 KiB)
	// progresses well within the write timeout, the whole 1.4 MiB takes
	// about 9 s.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, 8<<10)
	read := 0
	for range tick.C {
		n, err := io.ReadFull(c, buf)
		read += n
		if err != nil {
			break
		}
	}
	if read >= 1<<20 {
		t.Errorf("got %d bytes in %v, the whole answer, want it cut at its deadline (%v)", read, time.Since(begun).Round(time.Millisecond), writeTimeout)
	}
	t.Logf("cut after %v and %d bytes", time.Since(begun).Round(time.Millisecond), read)
}

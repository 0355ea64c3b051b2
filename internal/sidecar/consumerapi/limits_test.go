package consumerapi_test

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/testutil/poll"
	"github.com/recbuf/recbuf/internal/wire"
)

// dialNonReader opens a connection whose client never reads, with a small
// receive buffer, and sends req. With the server's send buffer capped
// (consumerapi.ConnContext), an answer of 1 MiB fills the connection.
func dialNonReader(t *testing.T, addr, req string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientsThatNeverReadAreLetGoWithinTheWriteTimeout: 300 clients ask
// for a 1 MiB value and never read the answer. Each answer blocks its
// handler (and its connection's goroutines) once the socket is full; the
// write timeout must release them all, or a few hundred such clients hold
// the process's goroutines and memory for ever.
func TestClientsThatNeverReadAreLetGoWithinTheWriteTimeout(t *testing.T) {
	const (
		clients = 300
		// Long enough that no answer times out before the last of the
		// clients has connected, on a loaded machine under -race (with
		// 2 s, the first ones were let go before the last came, and the
		// test saw fewer than 300 held: a flake).
		writeTimeout = 6 * time.Second
	)
	cases := []struct {
		name string
		path string
	}{
		{name: "the envelope of latest", path: "/v1/records/ring/latest"},
		{name: "latest in raw format", path: "/v1/records/ring/latest?format=raw"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Caps above the clients: this test is about the write timeout
			// (TestOneCapHoldsEveryConsumerRequest is about the caps).
			f := newFixture(t, consumerapi.Config{WriteTimeout: writeTimeout, MaxRequests: 2 * clients, MaxRequestsPerClient: 2 * clients})
			// Not JSON: the envelope carries it in base64, 1.4 MiB.
			if err := f.ring.Push(wire.Message{Data: bytes.Repeat([]byte{0xff}, 1<<20), Subject: "s"}); err != nil {
				t.Fatal(err)
			}
			base := runtime.NumGoroutine()
			for range clients {
				dialNonReader(t, f.srv.Listener.Addr().String(), "GET "+tc.path+" HTTP/1.1\r\nHost: test\r\n\r\n")
			}
			// The most goroutines seen while the requests arrive: under
			// -race the first ones may time out before the last arrives.
			held := 0
			poll.Until(t, "every client's request reached its handler", func() bool {
				held = max(held, runtime.NumGoroutine()-base)
				return f.api.Stats("ring").LatestTotal == clients
			})
			begun := time.Now()
			// A connection being answered has its serving goroutine and its
			// background reader: at least one per client, or the test
			// shows nothing.
			if held < clients {
				t.Fatalf("got at most %d goroutines more than before the clients came, want at least %d: the answers did not block", held, clients)
			}
			// Everything is let go once every write has waited out its
			// timeout; the slack is for a shared machine under -race.
			const slack = 6 * time.Second
			poll.UntilWithin(t, writeTimeout+slack, "the goroutines of the clients that do not read are released", func() bool {
				return runtime.NumGoroutine() <= base+10
			})
			t.Logf("%d clients held %d goroutines; released %v after the last request began (write timeout %v)",
				clients, held, time.Since(begun).Round(time.Millisecond), writeTimeout)
		})
	}
}

package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/wire"
	"github.com/recbuf/recbuf/pkg/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitTimeout = 20 * time.Second

// server serves one ring record "r" of capacity 64 straight from a buffer.
func server(t *testing.T) (*httptest.Server, buffer.Buffer[wire.Message]) {
	t.Helper()
	buf, err := buffer.New[wire.Message](buffer.TypeSpmcRing, 64)
	if err != nil {
		t.Fatal(err)
	}
	api, err := consumerapi.New(consumerapi.Config{Retry: time.Millisecond, Logger: slog.New(slog.DiscardHandler)},
		consumerapi.Record{Name: "r", Buffer: buf})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() { buf.Close(); srv.Close() })
	return srv, buf
}

func pushN(t *testing.T, b buffer.Buffer[wire.Message], n int) {
	t.Helper()
	for range n {
		seq := b.Stats().LastSeq + 1
		if err := b.Push(wire.Message{Data: []byte("v" + strconv.FormatUint(seq, 10))}); err != nil {
			t.Fatal(err)
		}
	}
}

func newClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStreamResumesWithoutLossAfterAConnectionDrop(t *testing.T) {
	srv, buf := server(t)
	c := newClient(t, srv.URL+"/v1/records/r")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var (
		connects, disconnects, lags atomic.Int32
		got                         []uint64
	)
	err := c.Stream(ctx, client.HandlerFunc(func(_ context.Context, v client.Value) error {
		got = append(got, v.Seq)
		if string(v.Payload) != "v"+strconv.FormatUint(v.Seq, 10) {
			t.Errorf("got payload %q for seq %d", v.Payload, v.Seq)
		}
		switch v.Seq {
		case 3:
			// Drop the connection, then push while the client is away.
			srv.CloseClientConnections()
			pushN(t, buf, 3)
		case 6:
			cancel()
		}
		return nil
	}),
		client.WithBackoff(time.Millisecond, 10*time.Millisecond),
		client.OnConnect(func(cn client.Connection) {
			if connects.Add(1) == 1 {
				pushN(t, buf, 3)
			} else if !cn.Resumed || cn.After != 3 {
				t.Errorf("got reconnection %+v, want resumed after 3", cn)
			}
		}),
		client.OnDisconnect(func(error) { disconnects.Add(1) }),
		client.OnLag(func(uint64) { lags.Add(1) }),
	)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Stream: got %v, want context.Canceled", err)
	}
	if want := []uint64{1, 2, 3, 4, 5, 6}; len(got) != len(want) || got[5] != 6 || got[3] != 4 {
		t.Errorf("got values %v, want %v", got, want)
	}
	if connects.Load() != 2 || disconnects.Load() != 1 || lags.Load() != 0 {
		t.Errorf("got %d connects, %d disconnects, %d lags; want 2, 1, 0", connects.Load(), disconnects.Load(), lags.Load())
	}
}

func TestStreamReturnsTheHandlersError(t *testing.T) {
	srv, buf := server(t)
	pushN(t, buf, 1)
	boom := errors.New("boom")
	err := newClient(t, srv.URL+"/v1/records/r").Stream(context.Background(),
		client.HandlerFunc(func(context.Context, client.Value) error { return boom }), client.FromOldest())
	if !errors.Is(err, boom) {
		t.Errorf("got %v, want the handler's error", err)
	}
}

func TestStreamGivesUpOnClientErrorsAndRetriesServerErrors(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		status := http.StatusInternalServerError
		if calls.Add(1) >= 3 {
			status = http.StatusNotFound
		}
		http.Error(w, `{"error":"nope"}`, status)
	}))
	defer srv.Close()
	err := newClient(t, srv.URL+"/v1/records/r").Stream(context.Background(),
		client.HandlerFunc(func(context.Context, client.Value) error { return nil }),
		client.WithBackoff(time.Millisecond, time.Millisecond))
	var se *client.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound || se.Message != "nope" {
		t.Errorf("got %v, want a 404 StatusError with message nope", err)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("got %d attempts, want 3 (two 500s retried, then a 404)", got)
	}
}

func TestStreamReconnectsASilentConnection(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := newClient(t, srv.URL+"/v1/records/r").Stream(ctx,
		client.HandlerFunc(func(context.Context, client.Value) error { return nil }),
		client.WithIdleTimeout(20*time.Millisecond), client.WithBackoff(time.Millisecond, time.Millisecond),
		client.OnConnect(func(client.Connection) {
			if calls.Load() == 3 {
				cancel()
			}
		}))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled after the third connection", err)
	}
	srv.CloseClientConnections()
}

func TestStreamDoesNotCountTimeInASlowHandlerAsSilence(t *testing.T) {
	srv, buf := server(t)
	pushN(t, buf, 5)
	const idle = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var (
		connects, disconnects atomic.Int32
		got                   []uint64
	)
	err := newClient(t, srv.URL+"/v1/records/r").Stream(ctx, client.HandlerFunc(func(hctx context.Context, v client.Value) error {
		got = append(got, v.Seq)
		if v.Seq == 1 {
			// A slow handler: the other values wait in the client's read
			// buffer, so the connection reads nothing for several idle
			// timeouts although it is healthy.
			select {
			case <-hctx.Done():
				t.Errorf("the handler's context ended while it worked on value 1: %v", hctx.Err())
			case <-time.After(5 * idle):
			}
		}
		if v.Seq == 5 {
			cancel()
		}
		return nil
	}),
		client.FromOldest(), client.WithIdleTimeout(idle), client.WithBackoff(time.Millisecond, time.Millisecond),
		client.OnConnect(func(client.Connection) { connects.Add(1) }),
		client.OnDisconnect(func(error) { disconnects.Add(1) }))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Stream: got %v, want context.Canceled", err)
	}
	if want := []uint64{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("got values %v, want %v", got, want)
	}
	if connects.Load() != 1 || disconnects.Load() != 0 {
		t.Errorf("got %d connects and %d disconnects, want 1 and 0", connects.Load(), disconnects.Load())
	}
}

func TestStreamDeliversNothingOnceItsContextEnds(t *testing.T) {
	srv, buf := server(t)
	// Pushed before the stream opens, the values reach the client in one
	// write, so all of them are buffered when the handler cancels.
	pushN(t, buf, 10)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var got []uint64
	err := newClient(t, srv.URL+"/v1/records/r").Stream(ctx, client.HandlerFunc(func(_ context.Context, v client.Value) error {
		got = append(got, v.Seq)
		cancel()
		return nil
	}), client.FromOldest())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Stream: got %v, want context.Canceled", err)
	}
	if want := []uint64{1}; !slices.Equal(got, want) {
		t.Errorf("got values %v, want %v (none after the cancellation)", got, want)
	}
}

func TestLatestAndTake(t *testing.T) {
	srv, buf := server(t)
	c := newClient(t, srv.URL+"/v1/records/r")
	if _, err := c.Latest(context.Background()); !errors.Is(err, client.ErrNoValue) {
		t.Errorf("Latest of an empty record: got %v, want ErrNoValue", err)
	}
	pushN(t, buf, 2)
	v, err := c.Latest(context.Background())
	if err != nil || v.Seq != 2 || string(v.Payload) != "v2" || v.JSON {
		t.Errorf("Latest: got %+v, %v, want seq 2 v2", v, err)
	}
	if err := v.Decode(new(any)); err == nil {
		t.Error("Decode of a non-JSON payload succeeded")
	}
	var se *client.StatusError
	if _, err := c.Take(context.Background(), 0); !errors.As(err, &se) || se.StatusCode != http.StatusConflict {
		t.Errorf("Take on a ring: got %v, want a 409 StatusError", err)
	}
}

func TestNewRefusesURLsThatAreNotHTTP(t *testing.T) {
	for _, u := range []string{"nats://x:4222", "://", "telemetry"} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}

// request is what a fake buffer process saw of one stream request.
type request struct {
	lastEventID, instance string
	at                    time.Time
}

// fakeProcess serves /v1/records/r/events by calling its turns in order,
// one per connection, and records each request's resume headers. Once
// out of turns it holds the connection open until the client goes.
func fakeProcess(t *testing.T, turns ...func(w http.ResponseWriter)) (*httptest.Server, <-chan request) {
	t.Helper()
	reqs := make(chan request, len(turns)+1)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqs <- request{lastEventID: r.Header.Get("Last-Event-ID"), instance: r.Header.Get(wire.HeaderInstance), at: time.Now()}
		i := int(n.Add(1)) - 1
		if i >= len(turns) {
			<-r.Context().Done()
			return
		}
		turns[i](w)
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return srv, reqs
}

// events answers a stream as instance inst with the raw SSE text body,
// then ends the connection.
func events(inst, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set(wire.HeaderInstance, inst)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, body)
	}
}

func valueEvent(inst string, seq uint64) string {
	m := wire.Message{Data: []byte("v" + strconv.FormatUint(seq, 10))}
	return string(wire.AppendValueEvent(nil, inst, seq, &m))
}

// nthRequest returns the n-th request (from 1), or fails.
func nthRequest(ctx context.Context, t *testing.T, reqs <-chan request, n int) request {
	for i := 1; ; i++ {
		select {
		case r := <-reqs:
			if i == n {
				return r
			}
		case <-ctx.Done():
			t.Errorf("got %d requests, want %d", i-1, n)
			return request{}
		}
	}
}

func TestStreamResumesWithTheEventIDItLastSaw(t *testing.T) {
	cases := []struct {
		name string
		// turns answer the connections before the one checked.
		turns                         []func(w http.ResponseWriter)
		wantLastEventID, wantInstance string
	}{
		{name: "an id that names its instance is sent back as it came",
			turns:           []func(http.ResponseWriter){events("a", valueEvent("a", 3))},
			wantLastEventID: "a-3", wantInstance: "a"},
		{name: "a bare id of an earlier server is sent back bare, with the instance header",
			turns:           []func(http.ResponseWriter){events("a", valueEvent("", 3))},
			wantLastEventID: "3", wantInstance: "a"},
		{name: "a reset without a value after it leaves the position with the instance that numbered it",
			// a served value 3; then b, a restart, reset the position and
			// the connection dropped before any value of b's.
			turns: []func(http.ResponseWriter){
				events("a", valueEvent("a", 3)),
				events("b", string(wire.AppendResetEvent(nil, 3, 9, "instance"))),
			},
			wantLastEventID: "a-3", wantInstance: "a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, reqs := fakeProcess(t, tc.turns...)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			var values []client.Value
			done := make(chan struct{})
			go func() {
				defer close(done)
				r := nthRequest(ctx, t, reqs, len(tc.turns)+1)
				if r.lastEventID != tc.wantLastEventID || r.instance != tc.wantInstance {
					t.Errorf("reconnected with Last-Event-ID %q and %s %q, want %q and %q",
						r.lastEventID, wire.HeaderInstance, r.instance, tc.wantLastEventID, tc.wantInstance)
				}
				cancel()
			}()
			_ = newClient(t, srv.URL+"/v1/records/r").Stream(ctx, client.HandlerFunc(func(_ context.Context, v client.Value) error {
				values = append(values, v)
				return nil
			}), client.WithBackoff(time.Millisecond, time.Millisecond))
			<-done
			if len(values) != 1 || values[0].Seq != 3 || values[0].Instance != "a" {
				t.Errorf("got values %+v, want value 3 numbered by a", values)
			}
		})
	}
}

func TestStreamResumesAtAGivenInstancesPosition(t *testing.T) {
	srv, reqs := fakeProcess(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	go func() {
		r := nthRequest(ctx, t, reqs, 1)
		// Bare with the header: what every version of the server reads.
		if r.lastEventID != "7" || r.instance != "a" {
			t.Errorf("got Last-Event-ID %q and %s %q, want 7 and a", r.lastEventID, wire.HeaderInstance, r.instance)
		}
		cancel()
	}()
	_ = newClient(t, srv.URL+"/v1/records/r").Stream(ctx, client.HandlerFunc(func(context.Context, client.Value) error { return nil }),
		client.AfterIn("a", 7))
}

func TestStreamWaitsAsLongAsABusyServerAsks(t *testing.T) {
	srv, reqs := fakeProcess(t, func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	go func() {
		first := nthRequest(ctx, t, reqs, 1)
		second := nthRequest(ctx, t, reqs, 1)
		if waited := second.at.Sub(first.at); waited < time.Second {
			t.Errorf("retried after %v, want at least the 1s of Retry-After", waited)
		}
		cancel()
	}()
	_ = newClient(t, srv.URL+"/v1/records/r").Stream(ctx, client.HandlerFunc(func(context.Context, client.Value) error { return nil }),
		client.WithBackoff(time.Millisecond, time.Millisecond))
}

// A Service whose new endpoint kube-proxy has not programmed yet refuses
// connections for a moment: a request that was never sent is tried again.
func TestARequestThatCouldNotConnectIsTriedAgainForAWhile(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens: connections are refused

	t.Run("a server that starts listening within the retry window answers", func(t *testing.T) {
		srv, buf := server(t)
		pushN(t, buf, 1)
		target, err := url.Parse(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		// A proxy on addr that starts late, in front of the real server:
		// the client's third connection attempt starts it, so the first
		// two are refused, as by an endpoint kube-proxy has not programmed.
		proxy := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
		_ = proxy.Listener.Close() // replaced by the late listener on addr
		t.Cleanup(func() {
			if proxy.URL != "" {
				proxy.Close()
			}
		})
		var dialer net.Dialer
		attempts := 0
		transport := &http.Transport{DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			if attempts++; attempts == 3 {
				l, err := net.Listen("tcp", addr)
				if err != nil {
					return nil, err
				}
				proxy.Listener = l
				proxy.Start()
			}
			return dialer.DialContext(ctx, network, address)
		}}
		t.Cleanup(transport.CloseIdleConnections)
		c := newClient(t, "http://"+addr+"/v1/records/r", client.WithConnectRetry(10*time.Second), client.WithHTTPClient(&http.Client{Transport: transport}))
		v, err := c.Latest(context.Background())
		if err != nil || v.Seq != 1 {
			t.Fatalf("Latest: got %+v, %v; want value 1 once the server listens", v, err)
		}
	})

	t.Run("without a retry window the refusal is returned at once", func(t *testing.T) {
		c := newClient(t, "http://"+addr+"/v1/records/r", client.WithConnectRetry(0))
		start := time.Now()
		_, err := c.Take(context.Background(), 0)
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("Take: got %v, want connection refused", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Take took %v, want it at once", d)
		}
	})

	t.Run("a server that never listens is given up on after the window", func(t *testing.T) {
		c := newClient(t, "http://"+addr+"/v1/records/r", client.WithConnectRetry(500*time.Millisecond))
		_, err := c.Latest(context.Background())
		if err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("Latest: got %v, want connection refused after the window", err)
		}
	})
}

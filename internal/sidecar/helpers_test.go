package sidecar_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/sidecar"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/pkg/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait for a condition in these tests.
const waitTimeout = 20 * time.Second

// running is a sidecar started for one test.
type running struct {
	*sidecar.Sidecar
	cfg    sidecar.Config
	cancel context.CancelFunc
}

// stop shuts the sidecar down and waits for it.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := r.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}

func ring(name string, capacity int) sidecar.RecordConfig {
	return sidecar.RecordConfig{Namespace: "ns", Name: name, UID: "uid-" + name, Type: buffer.TypeSpmcRing, Capacity: capacity, Subject: "in." + name}
}

func latest(name string) sidecar.RecordConfig {
	return sidecar.RecordConfig{Namespace: "ns", Name: name, UID: "uid-" + name, Type: buffer.TypeSingleLatest, Subject: "in." + name}
}

func mailbox(name string) sidecar.RecordConfig {
	return sidecar.RecordConfig{Namespace: "ns", Name: name, UID: "uid-" + name, Type: buffer.TypeMailbox, Subject: "in." + name}
}

// testConfig is a config with fast reconnects and random ports.
func testConfig(natsURL string, records ...sidecar.RecordConfig) sidecar.Config {
	return sidecar.Config{
		Pod:            "pod-0",
		Records:        records,
		NATS:           sidecar.NATSConfig{URL: natsURL, ReconnectWait: 10 * time.Millisecond, MaxReconnectWait: 50 * time.Millisecond},
		HTTPAddr:       "127.0.0.1:0",
		MetricsAddr:    "127.0.0.1:0",
		ReportInterval: time.Hour,
		ShutdownGrace:  5 * time.Second,
		StreamRetry:    10 * time.Millisecond,
		Logger:         slog.New(slog.DiscardHandler),
	}
}

// start starts a sidecar and stops it when the test ends.
func start(t *testing.T, cfg sidecar.Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := sidecar.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	r := &running{Sidecar: s, cfg: cfg, cancel: cancel}
	t.Cleanup(func() {
		cancel()
		_ = s.Wait()
	})
	return r
}

func (r *running) client(t *testing.T, record string) *client.Client {
	t.Helper()
	c, err := client.New(r.RecordURL(record))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// publish publishes payloads "<prefix><i>" for i in [from, to] and
// flushes, so that the server has routed them when it returns.
func publish(t *testing.T, nc *nats.Conn, subject, prefix string, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := nc.Publish(subject, []byte(prefix+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, f any) gomega.AsyncAssertion {
	t.Helper()
	return gomega.NewWithT(t).Eventually(f).WithTimeout(waitTimeout).WithPolling(5 * time.Millisecond)
}

// get returns the status and body of a GET.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of the sample line that starts with prefix
// (name and labels) in the sidecar's /metrics, or -1.
func (r *running) metric(t *testing.T, prefix string) float64 {
	t.Helper()
	_, body := get(t, "http://"+r.MetricsAddr()+"/metrics")
	for line := range strings.SplitSeq(body, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return -1
}

// natsServer starts a NATS server for one test.
func natsServer(t *testing.T, opts ...natstest.Option) *natstest.Server {
	t.Helper()
	return natstest.Start(t, opts...)
}

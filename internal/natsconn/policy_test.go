package natsconn_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/recbuf/recbuf/internal/natsconn"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/internal/testutil/poll"
)

func TestBackoffDoublesFromTheFirstDelayUpToTheCap(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, time.Second
	cases := []struct {
		name     string
		attempts int
		want     time.Duration // before jitter
	}{
		{name: "the first attempt waits the first delay", attempts: 1, want: lo},
		{name: "the second attempt waits twice as long", attempts: 2, want: 2 * lo},
		{name: "the fourth attempt waits eight times as long", attempts: 4, want: 8 * lo},
		{name: "the fifth attempt is capped", attempts: 5, want: hi},
		{name: "the hundredth attempt stays at the cap", attempts: 100, want: hi},
	}
	delay := natsconn.Backoff(lo, hi)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for range 200 {
				if got := delay(tc.attempts); got < tc.want || got > tc.want+tc.want/4 {
					t.Fatalf("attempt %d: got %v, want between %v and %v (25%% jitter)", tc.attempts, got, tc.want, tc.want+tc.want/4)
				}
			}
		})
	}
}

func TestBackoffJittersSoThatClientsDoNotReconnectInLockstep(t *testing.T) {
	delay := natsconn.Backoff(time.Second, time.Second)
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[delay(1)] = true
	}
	if len(seen) < 2 {
		t.Errorf("got %d distinct delays in 100 attempts, want them to vary", len(seen))
	}
}

func TestRedactURLRemovesUserInformation(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{name: "a URL without user information is kept as it is",
			in: "nats://nats:4222", want: "nats://nats:4222"},
		{name: "a user and password are removed",
			in: "nats://edge:pw@nats:4222", want: "nats://nats:4222"},
		{name: "a token in the user position is removed",
			in: "tls://s3cret@nats:4222", want: "tls://nats:4222"},
		{name: "each URL of a list is redacted",
			in: "nats://a:pw@n1:4222, nats://n2:4222,nats://tok@n3:4222", want: "nats://n1:4222,nats://n2:4222,nats://n3:4222"},
		{name: "a URL without a scheme is read as nats.go reads it",
			in: "edge:pw@nats:4222", want: "nats:4222"},
		{name: "a URL that does not parse loses everything up to its last @",
			in: "nats://edge:p%zz@nats:4222", want: "nats:4222"},
		{name: "no URL stays empty", in: "", want: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := natsconn.RedactURL(tc.in); got != tc.want {
				t.Errorf("RedactURL(%q): got %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// logLines is a concurrency-safe JSON log sink whose lines a test reads.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logLines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// records returns the logged lines, decoded.
func (l *logLines) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.text()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	return out
}

// hookCounts counts the hook calls of a Policy.
type hookCounts struct{ connected, disconnected, closed atomic.Int32 }

func (h *hookCounts) hooks() natsconn.Hooks {
	return natsconn.Hooks{
		Connected:    func(*nats.Conn) { h.connected.Add(1) },
		Disconnected: func(*nats.Conn) { h.disconnected.Add(1) },
		Closed:       func(*nats.Conn) { h.closed.Add(1) },
	}
}

func fastPolicy(log *slog.Logger, hooks natsconn.Hooks) natsconn.Policy {
	return natsconn.Policy{
		Name: "test", ReconnectWait: 10 * time.Millisecond, MaxReconnectWait: 50 * time.Millisecond,
		Logger: log, Hooks: hooks,
	}
}

func TestAPolicyConnectionReconnectsToARestartedServerAndLogsNoCredentials(t *testing.T) {
	const secret = "s3cret-do-not-log"
	cases := []struct {
		name     string
		opts     []natstest.Option
		userinfo string
	}{
		{name: "a user and password in the URL",
			opts: []natstest.Option{natstest.WithUserPassword("edge", secret)}, userinfo: "edge:" + secret},
		{name: "a token in the URL",
			opts: []natstest.Option{natstest.WithToken(secret)}, userinfo: secret},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := natstest.Start(t, tc.opts...)
			withCreds := strings.Replace(ns.URL(), "nats://", "nats://"+tc.userinfo+"@", 1)
			var logs logLines
			var h hookCounts
			nc, err := fastPolicy(logs.logger(), h.hooks()).Connect(withCreds)
			if err != nil {
				t.Fatalf("Connect: got error %v, want a connection", err)
			}
			defer nc.Close()
			poll.Until(t, "the Connected hook ran", func() bool { return h.connected.Load() == 1 })

			ns.Stop()
			poll.Until(t, "the Disconnected hook ran", func() bool { return h.disconnected.Load() == 1 })
			ns.Restart()
			poll.Until(t, "the Connected hook ran again", func() bool { return h.connected.Load() == 2 })
			if !nc.IsConnected() {
				t.Errorf("got a connection that is not connected after the Connected hook, want connected")
			}
			nc.Close()
			poll.Until(t, "the Closed hook ran", func() bool { return h.closed.Load() == 1 })

			want := []string{"NATS connected", "NATS disconnected", "NATS reconnected", "NATS connection closed"}
			next := 0
			for _, rec := range logs.records(t) {
				if next < len(want) && rec["msg"] == want[next] {
					next++
				}
				if u, ok := rec["url"]; ok && rec["msg"] != "NATS not reachable yet, retrying in the background" && u != ns.URL() {
					t.Errorf("%q logged url %q, want %q", rec["msg"], u, ns.URL())
				}
			}
			if next < len(want) {
				t.Errorf("got log lines\n%s\nwant %q in that order", logs.text(), want)
			}
			if strings.Contains(logs.text(), secret) {
				t.Errorf("got the credentials in the log:\n%s", logs.text())
			}
		})
	}
}

// countingDialer counts connection attempts.
type countingDialer struct {
	net.Dialer
	dials atomic.Int32
}

func (d *countingDialer) Dial(network, address string) (net.Conn, error) {
	d.dials.Add(1)
	return d.DialContext(context.Background(), network, address)
}

func TestAPolicyConnectionKeepsRetryingWhenTheServerRefusesItsCredentials(t *testing.T) {
	ns := natstest.Start(t, natstest.WithToken("right"))
	var h hookCounts
	dialer := &countingDialer{}
	nc, err := fastPolicy(slog.New(slog.DiscardHandler), h.hooks()).
		Connect(ns.URL(), nats.Token("wrong"), nats.SetCustomDialer(dialer))
	if err != nil {
		t.Fatalf("Connect: got error %v, want a connection that keeps trying", err)
	}
	defer nc.Close()
	// nats.go gives up by default after the same refusal twice.
	poll.Until(t, "five connection attempts", func() bool { return dialer.dials.Load() >= 5 })
	if nc.IsClosed() || h.closed.Load() != 0 {
		t.Errorf("got a closed connection after %d refused attempts, want it still trying", dialer.dials.Load())
	}
	if h.connected.Load() != 0 {
		t.Errorf("got the Connected hook %d times with refused credentials, want 0", h.connected.Load())
	}
}

func TestSlowConsumerErrors(t *testing.T) {
	cases := []struct {
		name     string
		withHook bool
	}{
		{name: "a slow consumer goes to the hook, which names its subscription", withHook: true},
		{name: "a slow consumer without a hook is logged with its subject"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := natstest.Start(t)
			var logs logLines
			var slow atomic.Pointer[nats.Subscription]
			var hooks natsconn.Hooks
			if tc.withHook {
				hooks.SlowConsumer = func(sub *nats.Subscription) { slow.Store(sub) }
			}
			nc, err := fastPolicy(logs.logger(), hooks).Connect(ns.URL())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			release := make(chan struct{})
			defer close(release)
			sub, err := nc.Subscribe("slow", func(*nats.Msg) { <-release })
			if err != nil {
				t.Fatal(err)
			}
			if err := sub.SetPendingLimits(1, -1); err != nil {
				t.Fatal(err)
			}
			// The server must know the subscription before the publisher's
			// messages arrive, or it drops them and nobody is slow.
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			pub := ns.Connect()
			for _, subject := range []string{"slow", "slow", "slow"} {
				if err := pub.Publish(subject, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			if err := pub.Flush(); err != nil {
				t.Fatal(err)
			}
			if tc.withHook {
				poll.Until(t, "the SlowConsumer hook ran", func() bool { return slow.Load() != nil })
				if got := slow.Load(); got != sub {
					t.Errorf("got the hook called with subscription %p, want the slow one %p", got, sub)
				}
				if strings.Contains(logs.text(), `"msg":"NATS error"`) {
					t.Errorf("got the slow consumer logged by the policy as well:\n%s", logs.text())
				}
				return
			}
			poll.Until(t, "the slow consumer was logged", func() bool {
				return strings.Contains(logs.text(), `"msg":"NATS error"`)
			})
			for _, rec := range logs.records(t) {
				if rec["msg"] == "NATS error" && (rec["subject"] != "slow" || rec["level"] != "WARN") {
					t.Errorf("got %v, want a warning naming subject slow", rec)
				}
			}
		})
	}
}

package statusagg

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
	"k8s.io/apimachinery/pkg/types"

	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/internal/testutil/poll"
	"github.com/recbuf/recbuf/internal/testutil/sandbox"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const prefix = "test.stats"

var (
	recA = types.NamespacedName{Namespace: "ns", Name: "a"}
	recB = types.NamespacedName{Namespace: "ns", Name: "b"}
	recC = types.NamespacedName{Namespace: "ns", Name: "c"}
)

// fakeClock is a settable clock for expiry; tick still runs on real time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

// testKey is the report key of the tests' Records.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// testPods are the pods of the tests' Records.
var testPods = []string{"p", "p1", "p2", "pod-1", "pod-2"}

// startCollector runs a Collector until the test ends, with recA, recB and
// recC admitted (UID "u", testKey, testPods).
func startCollector(t *testing.T, opts Options, clock *fakeClock) *Collector {
	t.Helper()
	opts.Prefix = prefix
	if opts.Interval == 0 {
		opts.Interval = 20 * time.Millisecond
	}
	if opts.ReconnectWait == 0 {
		opts.ReconnectWait = 20 * time.Millisecond
	}
	if opts.MaxReconnectWait == 0 {
		opts.MaxReconnectWait = 100 * time.Millisecond
	}
	c := New(opts)
	if clock != nil {
		c.now = clock.now
	}
	for _, key := range []types.NamespacedName{recA, recB, recC} {
		c.Admit(key, Identity{UID: "u", Key: testKey, Pods: testPods})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start returned %v, want nil", err)
		}
	})
	return c
}

// publish publishes r signed with testKey, as a buffer process would.
func publish(t *testing.T, nc *nats.Conn, r report.Report) {
	t.Helper()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	publishMsg(t, nc, report.Subject(prefix, r.Namespace, r.Record, r.Pod), data, report.Sign(testKey, data))
}

// publishMsg publishes data on subject with the signature sig ("": none).
func publishMsg(t *testing.T, nc *nats.Conn, subject string, data []byte, sig string) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = data
	if sig != "" {
		m.Header.Set(report.SignatureHeader, sig)
	}
	if err := nc.PublishMsg(m); err != nil {
		t.Fatalf("publishing report: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flushing: %v", err)
	}
}

// nextChange returns the next change, failing the test after 10s.
func nextChange(t *testing.T, c *Collector) Change {
	t.Helper()
	select {
	case ev := <-c.Changes():
		return ev.Object
	case <-time.After(10 * time.Second):
		t.Fatal("no change within 10s")
		return Change{}
	}
}

// waitChange skips changes until one for key arrives, and returns the
// changes skipped.
func waitChange(t *testing.T, c *Collector, key types.NamespacedName) []Change {
	t.Helper()
	var skipped []Change
	for {
		ch := nextChange(t, c)
		if ch.Record == key {
			return skipped
		}
		skipped = append(skipped, ch)
	}
}

func rep(key types.NamespacedName, uid, pod string, produced uint64) report.Report {
	return report.Report{
		Namespace: key.Namespace, Record: key.Name, RecordUID: uid, Pod: pod,
		Time:     time.Now(),
		Counters: report.Counters{Produced: produced, Delivered: 2 * produced, Subscribers: 1, Overwrites: 1},
	}
}

func TestAggregateSumsTheFreshReportsOfTheRecordsPods(t *testing.T) {
	srv := natstest.Start(t)
	c := startCollector(t, Options{URL: srv.URL(), StaleAfter: time.Hour}, nil)
	nc := srv.Connect()
	poll.Until(t, "the collector to connect", func() bool { return c.State().Connected })

	lastMsg := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := rep(recA, "u", "pod-1", 10)
	b := rep(recA, "u", "pod-2", 5)
	b.Counters.LastMessageTime = lastMsg
	c2 := rep(recA, "u", "p", 1)
	for _, r := range []report.Report{b, c2, a} {
		publish(t, nc, r)
	}
	poll.Until(t, "three reports", func() bool { return c.Aggregate(recA, "u").Pods == 3 })

	got := c.Aggregate(recA, "u")
	want := report.Counters{Produced: 16, Delivered: 32, Subscribers: 3, Overwrites: 3, LastMessageTime: lastMsg}
	if !got.Counters.Equal(want) {
		t.Errorf("got counters %+v, want %+v", got.Counters, want)
	}
	var pods []string
	for _, p := range got.PodReports {
		pods = append(pods, fmt.Sprintf("%s produced=%d", p.Pod, p.Counters.Produced))
		if p.Received.IsZero() || p.Received.After(got.LastReport) {
			t.Errorf("got pod %s received at %v, want a receipt time no later than the last report %v", p.Pod, p.Received, got.LastReport)
		}
	}
	// Sorted by name, whatever the order of arrival.
	if want := []string{"p produced=1", "pod-1 produced=10", "pod-2 produced=5"}; !slices.Equal(pods, want) {
		t.Errorf("got pod reports %q, want %q", pods, want)
	}
	if got.LastReport.IsZero() || got.NextExpiry.Sub(got.LastReport) > time.Hour {
		t.Errorf("got last report %v and next expiry %v, want a report time and the oldest report's expiry", got.LastReport, got.NextExpiry)
	}
	if g := c.Aggregate(recA, "another-uid"); g.Pods != 0 {
		t.Errorf("got %d pods for another incarnation of the Record, want 0", g.Pods)
	}
	if g := c.Aggregate(recB, "u"); g.Pods != 0 {
		t.Errorf("got %d pods for a record nobody reports, want 0", g.Pods)
	}
}

func TestChangesAnnounceOnlyRecordsWhoseReportsChanged(t *testing.T) {
	srv := natstest.Start(t)
	c := startCollector(t, Options{URL: srv.URL(), StaleAfter: time.Hour}, nil)
	nc := srv.Connect()
	if ch := nextChange(t, c); !ch.All {
		t.Fatalf("got first change %+v, want the All change of the connection coming up", ch)
	}

	publish(t, nc, rep(recA, "u", "p", 1))
	waitChange(t, c, recA)

	// The same report again (an idle record) changes nothing; B and then C
	// are barriers: once C is announced, a change of A would have been too.
	publish(t, nc, rep(recA, "u", "p", 1))
	publish(t, nc, rep(recB, "u", "p", 1))
	skipped := waitChange(t, c, recB)
	publish(t, nc, rep(recC, "u", "p", 1))
	skipped = append(skipped, waitChange(t, c, recC)...)
	if len(skipped) != 0 {
		t.Errorf("got changes %+v for an identical report, want none", skipped)
	}

	publish(t, nc, rep(recA, "u", "p", 2))
	waitChange(t, c, recA)
}

// TestAPodsIntervalIsCarriedAndItsChangeIsAChange: the manager judges a
// pod's silence by the interval its report carries, so a new interval
// alone (a settings change on an idle record) is announced.
func TestAPodsIntervalIsCarriedAndItsChangeIsAChange(t *testing.T) {
	srv := natstest.Start(t)
	c := startCollector(t, Options{URL: srv.URL(), StaleAfter: time.Hour}, nil)
	nc := srv.Connect()
	poll.Until(t, "the collector to connect", func() bool { return c.State().Connected })

	r := rep(recA, "u", "p", 1)
	r.Interval = report.Duration(2 * time.Second)
	publish(t, nc, r)
	waitChange(t, c, recA)
	if got := c.Aggregate(recA, "u").PodReports; len(got) != 1 || got[0].Interval != 2*time.Second {
		t.Fatalf("got pod reports %+v, want one with interval 2s", got)
	}
	r.Interval = report.Duration(4 * time.Second)
	r.Time = r.Time.Add(time.Second) // a later report, not a replay
	publish(t, nc, r)
	waitChange(t, c, recA)
	if got := c.Aggregate(recA, "u").PodReports[0].Interval; got != 4*time.Second {
		t.Errorf("got interval %s, want 4s", got)
	}
}

func TestManyReportsWithinAnIntervalMakeOneChange(t *testing.T) {
	srv := natstest.Start(t)
	c := startCollector(t, Options{URL: srv.URL(), StaleAfter: time.Hour, Interval: 200 * time.Millisecond}, nil)
	nc := srv.Connect()
	poll.Until(t, "the collector to connect", func() bool { return c.State().Connected })
	<-c.Changes() // the All change

	for i := range 50 {
		publish(t, nc, rep(recA, "u", "p", uint64(i)))
	}
	waitChange(t, c, recA)
	// Everything published before the flush above was received before it,
	// so at most one more change can follow (if the flush split them).
	publish(t, nc, rep(recB, "u", "p", 1))
	skipped := waitChange(t, c, recB)
	if len(skipped) > 1 {
		t.Errorf("got %d changes after the first for 50 reports, want at most 1", len(skipped))
	}
	if g := c.Aggregate(recA, "u").Counters.Produced; g != 49 {
		t.Errorf("got produced %d, want 49 (the newest report)", g)
	}
}

func TestAPodWhoseReportsStopLeavesTheAggregate(t *testing.T) {
	srv := natstest.Start(t)
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	c := startCollector(t, Options{URL: srv.URL(), StaleAfter: 30 * time.Second}, clock)
	nc := srv.Connect()
	poll.Until(t, "the collector to connect", func() bool { return c.State().Connected })

	publish(t, nc, repAt(recA, "p1", 1, clock.now()))
	poll.Until(t, "the first report", func() bool { return c.Aggregate(recA, "u").Pods == 1 })
	clock.advance(20 * time.Second)
	publish(t, nc, repAt(recA, "p2", 2, clock.now()))
	poll.Until(t, "the second report", func() bool { return c.Aggregate(recA, "u").Pods == 2 })
	if got, want := c.Aggregate(recA, "u").NextExpiry, time.Unix(1_000_030, 0); !got.Equal(want) {
		t.Errorf("got next expiry %v, want %v (p1's)", got, want)
	}
	// Consume A's changes so far: B is announced after them.
	publish(t, nc, repAt(recB, "p", 1, clock.now()))
	waitChange(t, c, recB)

	clock.advance(10 * time.Second) // p1's report is 30s old now
	if got := c.Aggregate(recA, "u"); got.Pods != 1 || got.Counters.Produced != 2 {
		t.Errorf("got %d pods and produced %d, want p2 alone (1 pod, 2)", got.Pods, got.Counters.Produced)
	}
	waitChange(t, c, recA) // tick forgot p1 and announced it

	clock.advance(20 * time.Second)
	if got := c.Aggregate(recA, "u"); got.Pods != 0 || !got.LastReport.IsZero() {
		t.Errorf("got %+v, want an empty aggregate once every report is stale", got)
	}
	waitChange(t, c, recA)
}

// TestOnlyAuthenticReportsOfCurrentPodsAreKept sends, for each way a
// report can fail its checks, such a report claiming produced=999, and then
// the genuine one: the genuine one alone counts, and the failure is counted
// under its reason.
func TestOnlyAuthenticReportsOfCurrentPodsAreKept(t *testing.T) {
	srv := natstest.Start(t)
	c := startCollector(t, Options{URL: srv.URL(), StaleAfter: time.Hour}, nil)
	nc := srv.Connect()
	poll.Until(t, "the collector to connect", func() bool { return c.State().Connected })

	encode := func(r report.Report) []byte {
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	forged := rep(recA, "u", "p", 999)
	body := encode(forged)
	signed := func(r report.Report) (string, []byte, string) {
		data := encode(r)
		return report.Subject(prefix, r.Namespace, r.Record, r.Pod), data, report.Sign(testKey, data)
	}
	with := func(mutate func(*report.Report)) report.Report {
		r := forged
		mutate(&r)
		return r
	}
	subjectOf := func(r report.Report) string { return report.Subject(prefix, r.Namespace, r.Record, r.Pod) }
	tests := []struct {
		name    string
		subject string
		data    []byte
		sig     string
		reason  RejectReason
	}{
		{"a subject outside the scheme", prefix + ".ns.a", body, report.Sign(testKey, body), RejectSubject},
		{"a Record the manager does not know", subjectOf(rep(types.NamespacedName{Namespace: "ns", Name: "x"}, "u", "p", 1)), body, report.Sign(testKey, body), RejectUnknownRecord},
		{"no signature", subjectOf(forged), body, "", RejectUnsigned},
		{"a signature under another key", subjectOf(forged), body, report.Sign([]byte("another key, 32 bytes long......"), body), RejectBadSignature},
		{"a signature of other bytes", subjectOf(forged), body, report.Sign(testKey, append(body, ' ')), RejectBadSignature},
		{"a signed body that is no report", subjectOf(forged), []byte("not json"), report.Sign(testKey, []byte("not json")), RejectMalformed},
		{"a body naming another Record than its subject", subjectOf(forged), encode(with(func(r *report.Report) { r.Record = "b" })),
			report.Sign(testKey, encode(with(func(r *report.Report) { r.Record = "b" }))), RejectSubject},
		{"a body naming another pod than its subject", subjectOf(forged), encode(with(func(r *report.Report) { r.Pod = "p1" })),
			report.Sign(testKey, encode(with(func(r *report.Report) { r.Pod = "p1" }))), RejectSubject},
	}
	add := func(name string, r report.Report, reason RejectReason) {
		subject, data, sig := signed(r)
		tests = append(tests, struct {
			name    string
			subject string
			data    []byte
			sig     string
			reason  RejectReason
		}{name, subject, data, sig, reason})
	}
	add("no recordUID", with(func(r *report.Report) { r.RecordUID = "" }), RejectRecordUID)
	add("another incarnation's recordUID", with(func(r *report.Report) { r.RecordUID = "old" }), RejectRecordUID)
	add("a pod name no status can hold", with(func(r *report.Report) { r.Pod = strings.Repeat("p", 300) }), RejectInvalidName)
	add("a pod name with capitals", with(func(r *report.Report) { r.Pod = "Evil" }), RejectInvalidName)
	add("a pod that is not the Record's", with(func(r *report.Report) { r.Pod = "evil-pod" }), RejectUnknownPod)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := rejections(t, tt.reason)
			publishMsg(t, nc, tt.subject, tt.data, tt.sig)
			poll.Until(t, "the rejection counted", func() bool {
				return rejections(t, tt.reason) == before+1
			})
			if a := c.Aggregate(recA, "u"); a.Pods != 0 {
				t.Errorf("got aggregate %+v, want nothing kept", a)
			}
		})
	}

	genuine := rep(recA, "u", "p", 7)
	publish(t, nc, genuine)
	poll.Until(t, "the genuine report", func() bool { return c.Aggregate(recA, "u").Pods == 1 })
	if got := c.Aggregate(recA, "u").Counters.Produced; got != 7 {
		t.Errorf("got produced %d, want 7", got)
	}

	// The genuine report sent again, as whoever listens on NATS can: it is
	// not newer than the pod's last, so it does not keep the pod fresh.
	before := rejections(t, RejectReplayed)
	publish(t, nc, genuine)
	poll.Until(t, "the replay counted", func() bool {
		return rejections(t, RejectReplayed) == before+1
	})
}

// rejections reads recbuf_reports_rejected_total{reason}.
func rejections(t *testing.T, reason RejectReason) float64 {
	t.Helper()
	var m dto.Metric
	if err := reportsRejected.WithLabelValues(string(reason)).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestAdmitAndForgetBoundWhatIsKept(t *testing.T) {
	srv := natstest.Start(t)
	c := startCollector(t, Options{URL: srv.URL(), StaleAfter: time.Hour}, nil)
	nc := srv.Connect()
	poll.Until(t, "the collector to connect", func() bool { return c.State().Connected })

	publish(t, nc, rep(recA, "u", "p1", 1))
	publish(t, nc, rep(recA, "u", "p2", 2))
	poll.Until(t, "two reports", func() bool { return c.Aggregate(recA, "u").Pods == 2 })

	// p1's pod is gone: its report no longer counts.
	c.Admit(recA, Identity{UID: "u", Key: testKey, Pods: []string{"p2"}})
	if a := c.Aggregate(recA, "u"); a.Pods != 1 || a.Counters.Produced != 2 {
		t.Errorf("got %+v after p1 left, want p2's report alone", a)
	}
	// The Record was recreated: the old incarnation's reports are dropped.
	c.Admit(recA, Identity{UID: "u2", Key: testKey, Pods: []string{"p2"}})
	if a := c.Aggregate(recA, "u2"); a.Pods != 0 {
		t.Errorf("got %+v for the new incarnation, want nothing", a)
	}
	c.Forget(recA)
	c.mu.Lock()
	_, known := c.known[recA]
	_, kept := c.records[recA]
	c.mu.Unlock()
	if known || kept {
		t.Errorf("got known %v, kept %v after Forget, want neither", known, kept)
	}
}

func TestTheCollectorRunsWithoutNATSAndConnectsWhenItComes(t *testing.T) {
	port := sandbox.FreePort(t)
	c := startCollector(t, Options{URL: "nats://127.0.0.1:" + strconv.Itoa(port)}, nil)
	if st := c.State(); st.Connected || !st.Since.IsZero() {
		t.Fatalf("got state %+v without a server, want disconnected", st)
	}

	srv := natstest.Start(t, natstest.WithOptions(func(o *server.Options) { o.Port = port }))
	if ch := nextChange(t, c); !ch.All {
		t.Fatalf("got change %+v, want All when the connection comes up", ch)
	}
	if st := c.State(); !st.Connected || st.Since.IsZero() {
		t.Fatalf("got state %+v, want connected with a time", st)
	}
	nc := srv.Connect()
	// The collector's subscription reaches the server on its own
	// connection, which may come after this one's first message: report
	// again until it counts, as a buffer process does every interval.
	poll.Until(t, "a report through the late connection", func() bool {
		publish(t, nc, rep(recA, "u", "p", 3))
		return c.Aggregate(recA, "u").Pods == 1
	})

	srv.Stop()
	// A's change may come first; the All change must follow.
	for ch := nextChange(t, c); !ch.All; ch = nextChange(t, c) {
		if ch.Record != recA {
			t.Fatalf("got change %+v, want All when the connection goes down", ch)
		}
	}
	if c.State().Connected {
		t.Error("got connected after the server stopped, want disconnected")
	}
}

func TestTheStateNamesTheServerWithoutItsCredentials(t *testing.T) {
	c := New(Options{URL: "nats://user:s3cret@nats:4222,nats://t0ken@nats-2:4222"})
	if got := c.State().URL; strings.Contains(got, "s3cret") || strings.Contains(got, "t0ken") || strings.Contains(got, "user") {
		t.Errorf("got URL %q in the state (and so in conditions), want it without user information", got)
	}
}

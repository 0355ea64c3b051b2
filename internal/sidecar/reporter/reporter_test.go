package reporter_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/sidecar/reporter"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestReporter(t *testing.T) {
	srv := natstest.Start(t)
	watch := srv.Connect()
	sub, err := watch.SubscribeSync(report.Wildcard("p"))
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	nc := srv.Connect()
	key := []byte("0123456789abcdef0123456789abcdef")
	r := reporter.New(reporter.Config{
		Conn: nc, Prefix: "p", Pod: "pod.1", Interval: time.Hour, Logger: slog.New(slog.DiscardHandler),
		Key: func() []byte { return key },
		Sources: []reporter.Source{{Namespace: "ns", Record: "rec", RecordUID: "u", Counters: func() report.Counters {
			return report.Counters{Produced: 7, Dropped: 2}
		}}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// The interval is an hour: only Trigger can make this report.
	r.Trigger()
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no report after Trigger: %v", err)
	}
	if want := "p.ns.rec.pod_1"; m.Subject != want {
		t.Errorf("got subject %q, want %q", m.Subject, want)
	}
	if sig := m.Header.Get(report.SignatureHeader); !report.Verify(key, m.Data, sig) {
		t.Errorf("got signature %q, want the body's under the report key", sig)
	}
	var got report.Report
	if err := json.Unmarshal(m.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Namespace != "ns" || got.Record != "rec" || got.RecordUID != "u" || got.Pod != "pod.1" ||
		got.Counters.Produced != 7 || got.Counters.Dropped != 2 || got.Time.IsZero() {
		t.Errorf("got report %+v", got)
	}

	srv.Stop()
	gomega.NewWithT(t).Eventually(nc.IsConnected).WithTimeout(10 * time.Second).Should(gomega.BeFalse())
	if n := r.Publish(); n != 0 {
		t.Errorf("published %d reports while disconnected, want 0", n)
	}
	if r.Published() != 1 || r.Failed() != 0 {
		t.Errorf("got %d published, %d failed; want 1, 0", r.Published(), r.Failed())
	}
}

// TestApplyChangesPrefixAndIntervalAtOnce: the report after Apply goes
// under the new prefix at once and carries the new interval, so that the
// manager never waits for a report at an interval the process no longer
// keeps; the ones after it come at the new interval.
func TestApplyChangesPrefixAndIntervalAtOnce(t *testing.T) {
	srv := natstest.Start(t)
	watch := srv.Connect()
	sub, err := watch.SubscribeSync(report.Wildcard("new"))
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	r := reporter.New(reporter.Config{
		Conn: srv.Connect(), Prefix: "old", Pod: "pod", Interval: time.Hour, Logger: slog.New(slog.DiscardHandler),
		Sources: []reporter.Source{{Namespace: "ns", Record: "rec", Counters: func() report.Counters { return report.Counters{} }}},
	})
	if got, want := r.Settings(), (report.Settings{Interval: report.Duration(time.Hour), SubjectPrefix: "old"}); got != want {
		t.Errorf("got settings %+v before Apply, want %+v", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	r.Apply(report.Settings{Interval: report.Duration(10 * time.Millisecond), SubjectPrefix: "new"})
	// An hour-long interval would allow one report (Apply's) in the wait:
	// three show the ticker runs at the new interval.
	for i := range 3 {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("report %d after Apply: %v", i, err)
		}
		var got report.Report
		if err := json.Unmarshal(m.Data, &got); err != nil {
			t.Fatal(err)
		}
		if m.Subject != "new.ns.rec.pod" || time.Duration(got.Interval) != 10*time.Millisecond {
			t.Fatalf("report %d: got subject %q, interval %s; want new.ns.rec.pod, 10ms", i, m.Subject, time.Duration(got.Interval))
		}
	}
}

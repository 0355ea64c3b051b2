package sidecar_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/onsi/gomega"

	"github.com/recbuf/recbuf/internal/report"
)

// TestChangedReportSettingsAreAppliedWithoutARestart is what keeps a
// manager-only change (helm upgrade --set reports.interval=…) from
// restarting buffer pods: the process re-reads its settings file — in a
// cluster the Record's ConfigMap, which the kubelet replaces by a rename —
// and reports under the new prefix and at the new interval, at once, while
// its buffer and its instance stay as they were.
func TestChangedReportSettingsAreAppliedWithoutARestart(t *testing.T) {
	ns := natsServer(t)
	watch := ns.Connect()
	before := subscribeReports(t, watch, "before")
	after := subscribeReports(t, watch, "after")
	file := filepath.Join(t.TempDir(), report.SettingsKey)
	writeFile(t, file, `{"interval":"1h","subjectPrefix":"before"}`)

	var logs lockedBuffer
	cfg := testConfig(ns.URL(), ring("r", 10))
	cfg.ReportSubjectPrefix = "flag"
	cfg.ReportSettingsFile = file
	cfg.SettingsPoll = 10 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	sc := start(t, cfg)
	eventually(t, sc.Ready).Should(gomega.BeTrue())

	if got := nextReport(t, before); time.Duration(got.Interval) != time.Hour {
		t.Errorf("first report: got interval %s, want 1h: the file overrides the command line", time.Duration(got.Interval))
	}
	publish(t, ns.Connect(), "in.r", "v", 1, 3)
	eventually(t, func() float64 { return sc.metric(t, `recbuf_buffer_produced_total{namespace="ns",record="r"}`) }).Should(gomega.Equal(3.0))
	instance := sc.Instance()

	writeFile(t, file, `{"interval":"20ms","subjectPrefix":"after"}`)
	// Three reports within the wait: the interval changed from an hour, not
	// only the one report that Apply publishes at once.
	for i := range 3 {
		got := nextReport(t, after)
		if time.Duration(got.Interval) != 20*time.Millisecond || got.Counters.Produced != 3 {
			t.Fatalf("report %d under the new prefix: got interval %s, produced %d; want 20ms, 3",
				i, time.Duration(got.Interval), got.Counters.Produced)
		}
	}
	if got := sc.metric(t, "recbuf_report_interval_seconds"); got != 0.02 {
		t.Errorf("got recbuf_report_interval_seconds %v, want 0.02", got)
	}
	if got := sc.Instance(); got != instance {
		t.Errorf("got instance %s after the change, want %s: the process did not restart", got, instance)
	}
	if status, body := get(t, sc.RecordURL("r")+"/latest"); status != 200 || !strings.Contains(body, `"seq":3`) {
		t.Errorf("latest after the change: got %d %s, want value 3 still held", status, body)
	}

	// A broken file is refused, logged once, and the settings stay.
	writeFile(t, file, `{"interval":"-1s","subjectPrefix":"after"}`)
	eventually(t, logs.String).Should(gomega.ContainSubstring("Report settings file refused"))
	drain(after)
	if got := nextReport(t, after); time.Duration(got.Interval) != 20*time.Millisecond {
		t.Errorf("after a refused file: got interval %s, want 20ms kept", time.Duration(got.Interval))
	}
	if n := strings.Count(logs.String(), "Report settings file refused"); n != 1 {
		t.Errorf("got %d log lines for the refused file, want 1", n)
	}
}

// writeFile replaces path's content atomically, as the kubelet updates a
// mounted ConfigMap: the reader sees the old content or the new, never a
// part.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func subscribeReports(t *testing.T, nc *nats.Conn, prefix string) *nats.Subscription {
	t.Helper()
	sub, err := nc.SubscribeSync(report.Wildcard(prefix))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

func nextReport(t *testing.T, sub *nats.Subscription) report.Report {
	t.Helper()
	m, err := sub.NextMsg(waitTimeout)
	if err != nil {
		t.Fatalf("no report on %s: %v", sub.Subject, err)
	}
	var r report.Report
	if err := json.Unmarshal(m.Data, &r); err != nil {
		t.Fatalf("report %s: %v", m.Data, err)
	}
	return r
}

// drain discards the messages sub has received so far.
func drain(sub *nats.Subscription) {
	for {
		if _, err := sub.NextMsg(0); err != nil {
			return
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger and a test at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

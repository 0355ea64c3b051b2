package metrics_test

import (
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/sidecar/intake"
	"github.com/recbuf/recbuf/internal/sidecar/metrics"
)

// samples gathers reg into "name{k=v,...} value" lines.
func samples(t *testing.T, mfs []*dto.MetricFamily) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(labels)
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}

func TestCollectorReportsOneSnapshotPerRecord(t *testing.T) {
	c := metrics.NewCollector(metrics.Conn{
		Connected:      func() bool { return true },
		Reconnects:     func() uint64 { return 3 },
		ReportInterval: func() time.Duration { return 2500 * time.Millisecond },
	}, metrics.Record{
		Namespace: "ns", Name: "r",
		Counters: func() report.Counters {
			return report.Counters{Produced: 10, Delivered: 9, LagEvents: 1, LaggedValues: 4, Evicted: 2, Subscribers: 2, Dropped: 3, LastMessageTime: time.Unix(1700000000, 0)}
		},
		Buffer: func() buffer.Stats {
			return buffer.Stats{Type: buffer.TypeSpmcRing, Capacity: 8, Occupancy: 8, Bytes: 100, MaxBytes: 128}
		},
		Intake: func() intake.Stats {
			return intake.Stats{Received: 10, Oversized: 1, Malformed: 2, UpstreamGaps: 5,
				PendingMessages: 3, PendingBytes: 300, PendingLimitMessages: 16384, PendingLimitBytes: 8 << 20}
		},
		Consumers: func() consumerapi.Stats {
			return consumerapi.Stats{Streams: 2, StreamsTotal: 4, LatestTotal: 1, StreamsRefused: 6, TakesRefused: 7, RequestsRefused: 8, ClientRefused: 9}
		},
	})
	mfs, err := metrics.NewRegistry(c).Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	got := samples(t, mfs)
	for name, want := range map[string]float64{
		"recbuf_buffer_produced_total{namespace=ns,record=r}":                     10,
		"recbuf_buffer_lagged_values_total{namespace=ns,record=r}":                4,
		"recbuf_buffer_evicted_total{namespace=ns,record=r}":                      2,
		"recbuf_buffer_capacity{namespace=ns,record=r,type=SpmcRing}":             8,
		"recbuf_buffer_bytes{namespace=ns,record=r}":                              100,
		"recbuf_buffer_max_bytes{namespace=ns,record=r}":                          128,
		"recbuf_intake_pending_messages{namespace=ns,record=r}":                   3,
		"recbuf_intake_pending_bytes{namespace=ns,record=r}":                      300,
		"recbuf_intake_pending_limit_messages{namespace=ns,record=r}":             16384,
		"recbuf_intake_pending_limit_bytes{namespace=ns,record=r}":                8 << 20,
		"recbuf_buffer_subscribers{namespace=ns,record=r}":                        2,
		"recbuf_intake_dropped_total{namespace=ns,reason=oversized,record=r}":     1,
		"recbuf_intake_dropped_total{namespace=ns,reason=malformed,record=r}":     2,
		"recbuf_intake_dropped_total{namespace=ns,reason=slow_consumer,record=r}": 0,
		"recbuf_intake_upstream_gap_values_total{namespace=ns,record=r}":          5,
		"recbuf_intake_last_message_timestamp_seconds{namespace=ns,record=r}":     1700000000,
		"recbuf_consumer_streams{namespace=ns,record=r}":                          2,
		"recbuf_consumer_requests_total{kind=stream,namespace=ns,record=r}":       4,
		"recbuf_consumer_requests_total{kind=latest,namespace=ns,record=r}":       1,
		"recbuf_consumer_refused_total{kind=stream,namespace=ns,record=r}":        6,
		"recbuf_consumer_refused_total{kind=take,namespace=ns,record=r}":          7,
		"recbuf_consumer_refused_total{kind=request,namespace=ns,record=r}":       8,
		"recbuf_consumer_refused_total{kind=client,namespace=ns,record=r}":        9,
		"recbuf_nats_connected{}":                                                 1,
		"recbuf_nats_reconnects_total{}":                                          3,
		"recbuf_report_interval_seconds{}":                                        2.5,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("got %s = %v (present: %v), want %v", name, v, ok, want)
		}
	}
}

// TestEveryReportedCounterHasAMetric fails when a field of report.Counters
// has no metric: adding a counter means adding its metric too.
func TestEveryReportedCounterHasAMetric(t *testing.T) {
	exported := map[string]bool{}
	for _, f := range metrics.ReportedFields() {
		exported[f] = true
	}
	ct := reflect.TypeFor[report.Counters]()
	for i := range ct.NumField() {
		name, _, _ := strings.Cut(ct.Field(i).Tag.Get("json"), ",")
		if !exported[name] {
			t.Errorf("report.Counters.%s (%q) has no metric", ct.Field(i).Name, name)
		}
	}
}

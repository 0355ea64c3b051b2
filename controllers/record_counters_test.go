package controllers

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/statusagg"
)

// setCountersFrom runs setCounters on the pods as in judges them, with a
// pending pod for each pod report (only the Record's pods count).
func setCountersFrom(rec *recbufv1alpha1.Record, in statusInputs) {
	for _, p := range in.aggregate.PodReports {
		in.pods = append(in.pods, corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Pod}, Status: corev1.PodStatus{Phase: corev1.PodPending}})
	}
	setCounters(rec, in, judgePods(in))
}

func TestSetCounters(t *testing.T) {
	lastMsg := t0.Add(-time.Minute + 300*time.Millisecond)
	agg := statusagg.Aggregate{
		Pods: 2, LastReport: t0.Add(-time.Second),
		PodReports: []statusagg.PodReport{
			{Pod: "door-recbuf-a", Counters: report.Counters{Produced: 4, Delivered: 8, Subscribers: 1, LagEvents: 1, LaggedValues: 5,
				Skipped: 2, Overwrites: 7, Dropped: 8, LastMessageTime: lastMsg}},
			{Pod: "door-recbuf-b", Counters: report.Counters{Produced: 10, Delivered: 12, Subscribers: 2, Skipped: 4,
				LastMessageTime: lastMsg.Add(-time.Minute)}},
		},
	}

	t.Run("the counters are copied with times at the API's precision", func(t *testing.T) {
		rec := testRecord()
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = agg }))
		st := rec.Status
		got := [...]int64{int64(st.ReportingPods), st.Produced, st.Delivered, st.Subscribers, st.LagEvents, st.LaggedValues, st.Skipped, st.Overwrites, st.Dropped}
		if want := [...]int64{2, 10, 20, 3, 1, 5, 6, 7, 8}; got != want {
			t.Errorf("got %v, want %v", got, want)
		}
		if want := lastMsg.Truncate(time.Second); !st.LastMessageTime.Time.Equal(want) {
			t.Errorf("got lastMessageTime %v, want %v", st.LastMessageTime, want)
		}
		if want := t0.Add(-time.Second); !st.LastReportTime.Time.Equal(want) {
			t.Errorf("got lastReportTime %v, want %v", st.LastReportTime, want)
		}
	})

	t.Run("each reporting pod is listed with its own counters", func(t *testing.T) {
		rec := testRecord()
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = agg }))
		want := []recbufv1alpha1.RecordPodStatus{
			{Name: "door-recbuf-a", Connected: true, Produced: 4, Subscribers: 1, Dropped: 8},
			{Name: "door-recbuf-b", Connected: true, Produced: 10, Subscribers: 2},
		}
		if !slices.Equal(rec.Status.Pods, want) {
			t.Errorf("got pods %+v, want %+v", rec.Status.Pods, want)
		}
	})

	t.Run("a change in one pod alone is a change", func(t *testing.T) {
		rec := testRecord()
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = agg }))
		later := agg
		later.LastReport = t0.Add(10 * time.Second)
		later.PodReports = slices.Clone(agg.PodReports)
		later.PodReports[1].Counters.Dropped = 1
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = later }))
		if rec.Status.Pods[1].Dropped != 1 || !rec.Status.LastReportTime.Time.Equal(later.LastReport) {
			t.Errorf("got pods %+v and lastReportTime %v, want pod b dropping 1 at %v", rec.Status.Pods, rec.Status.LastReportTime, later.LastReport)
		}
	})

	t.Run("the pod list is bounded", func(t *testing.T) {
		rec := testRecord()
		many := agg
		many.PodReports = nil
		for i := range recbufv1alpha1.MaxPodStatuses + 10 {
			many.PodReports = append(many.PodReports, statusagg.PodReport{Pod: fmt.Sprintf("door-recbuf-%03d", i)})
		}
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = many }))
		if got := len(rec.Status.Pods); got != recbufv1alpha1.MaxPodStatuses {
			t.Errorf("got %d pods listed, want %d", got, recbufv1alpha1.MaxPodStatuses)
		}
	})

	t.Run("unchanged sums leave lastReportTime alone", func(t *testing.T) {
		rec := testRecord()
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = agg }))
		before := rec.Status.DeepCopy()
		later := agg
		later.LastReport = t0.Add(10 * time.Second)
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = later }))
		if !rec.Status.LastReportTime.Equal(before.LastReportTime) {
			t.Errorf("got lastReportTime %v, want it unchanged at %v", rec.Status.LastReportTime, before.LastReportTime)
		}
	})

	t.Run("no fresh report keeps the last sums", func(t *testing.T) {
		rec := testRecord()
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = agg }))
		setCountersFrom(rec, inputs())
		if rec.Status.ReportingPods != 0 || rec.Status.Produced != 10 || rec.Status.Pods != nil {
			t.Errorf("got %d pods (%v) and produced %d, want 0 pods, none listed, and produced 10",
				rec.Status.ReportingPods, rec.Status.Pods, rec.Status.Produced)
		}
	})

	t.Run("a sum past the API's int64 saturates", func(t *testing.T) {
		rec := testRecord()
		huge := agg
		huge.PodReports = slices.Clone(agg.PodReports)
		huge.PodReports[0].Counters.Delivered = math.MaxUint64
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = huge }))
		if rec.Status.Delivered != math.MaxInt64 {
			t.Errorf("got delivered %d, want %d", rec.Status.Delivered, int64(math.MaxInt64))
		}
	})
}

// TestTheRecordsCountersCountEachValueOnceHoweverManyCopiesRun: two
// replicas and an app pod with the buffer injected each take in the 1100
// values the devices published; the Record took in 1100, not 3300.
func TestTheRecordsCountersCountEachValueOnceHoweverManyCopiesRun(t *testing.T) {
	copies := []statusagg.PodReport{
		{Pod: "telemetry-recbuf-a", Counters: report.Counters{Produced: 1100, Delivered: 1100, Subscribers: 1, Evicted: 76, Dropped: 2}},
		{Pod: "telemetry-recbuf-b", Counters: report.Counters{Produced: 1100, Delivered: 2200, Subscribers: 2, Evicted: 76, Dropped: 2, LaggedValues: 3}},
		{Pod: "dashboard-7f9c", Counters: report.Counters{Produced: 1040, Delivered: 1040, Subscribers: 1, Evicted: 16, Dropped: 2}},
	}
	queued := []statusagg.PodReport{
		{Pod: "telemetry-recbuf-a", Counters: report.Counters{Produced: 600, Delivered: 600, Subscribers: 1, Dropped: 1}},
		{Pod: "telemetry-recbuf-b", Counters: report.Counters{Produced: 500, Delivered: 500, Subscribers: 1, Dropped: 1}},
	}
	tests := []struct {
		name       string
		queueGroup string
		pods       []statusagg.PodReport
		want       [7]int64 // produced, evicted, dropped, delivered, subscribers, laggedValues, overwrites
	}{
		{"copies that each take in every value count each value once, consumers add up", "", copies,
			[7]int64{1100, 76, 2, 4340, 4, 3, 0}},
		{"pods of a queue group split the values, so everything adds up", "telemetry", queued,
			[7]int64{1100, 0, 2, 1100, 2, 0, 0}},
		{"a single pod's counters are the Record's", "", copies[:1],
			[7]int64{1100, 76, 2, 1100, 1, 0, 0}},
		{"no pod, no counts", "", nil, [7]int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := testRecord()
			if tt.queueGroup != "" {
				rec.Spec.Source = &recbufv1alpha1.SourceSpec{NATS: recbufv1alpha1.NATSSource{QueueGroup: tt.queueGroup}}
			}
			c := statusCounters(recordCounters(rec, tt.pods))
			got := [7]int64{c.Produced, c.Evicted, c.Dropped, c.Delivered, c.Subscribers, c.LaggedValues, c.Overwrites}
			if got != tt.want {
				t.Errorf("got produced, evicted, dropped, delivered, subscribers, laggedValues, overwrites = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestEveryReportedCounterReachesTheStatus fails when a field of
// report.Counters is not carried into RecordCounters under the same JSON
// name: adding a counter means adding it to statusCounters too.
func TestEveryReportedCounterReachesTheStatus(t *testing.T) {
	var in report.Counters
	v := reflect.ValueOf(&in).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.Uint64:
			f.SetUint(uint64(100 + i))
		case reflect.Int64:
			f.SetInt(int64(100 + i))
		case reflect.Struct: // time.Time
			f.Set(reflect.ValueOf(t0.Add(time.Duration(i) * time.Minute)))
		default:
			t.Fatalf("report.Counters.%s has kind %s: teach this test its value", v.Type().Field(i).Name, f.Kind())
		}
	}
	asMap := func(x any) map[string]any {
		data, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	reported, status := asMap(in), asMap(statusCounters(in))
	for name, want := range reported {
		got, ok := status[name]
		if !ok {
			t.Errorf("report field %q is missing from the status", name)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("report field %q: got %v in the status, want %v", name, got, want)
		}
	}
	for name := range status {
		if _, ok := reported[name]; !ok {
			t.Errorf("status counter %q comes from no report field", name)
		}
	}
}

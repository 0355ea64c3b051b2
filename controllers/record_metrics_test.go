package controllers

import (
	"context"
	"maps"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// readySeries returns the recbuf_record_ready_status series of one Record
// as the manager's /metrics would serve them, by condition label.
func readySeries(t *testing.T, namespace, name string) map[string]float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	series := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "recbuf_record_ready_status" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == namespace && labels["name"] == name {
				series[labels["condition"]] = m.GetGauge().GetValue()
			}
		}
	}
	return series
}

func TestObserveReadyMarksTheCurrentStatus(t *testing.T) {
	tests := []struct {
		name  string
		ready *metav1.ConditionStatus
		want  map[string]float64
	}{
		{"a Ready Record is 1 on True", ptr.To(metav1.ConditionTrue), map[string]float64{"True": 1, "False": 0, "Unknown": 0}},
		{"a Record that is not Ready is 1 on False", ptr.To(metav1.ConditionFalse), map[string]float64{"True": 0, "False": 1, "Unknown": 0}},
		{"a Record without a Ready condition yet is 1 on Unknown", nil, map[string]float64{"True": 0, "False": 0, "Unknown": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := testRecord(func(r *recbufv1alpha1.Record) {
				r.Namespace = "metrics-unit"
				r.Name = tt.name
				if tt.ready != nil {
					meta.SetStatusCondition(&r.Status.Conditions, metav1.Condition{
						Type: recbufv1alpha1.ConditionReady, Status: *tt.ready, Reason: "Test"})
				}
			})
			observeMetrics(rec)
			t.Cleanup(func() { forgetMetrics(client.ObjectKeyFromObject(rec)) })
			if got := readySeries(t, rec.Namespace, rec.Name); !maps.Equal(got, tt.want) {
				t.Errorf("got series %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTheReadyMetricFollowsARecordAndGoesWithIt runs through the manager:
// a new Record gets its series, a deleted one loses them.
func TestTheReadyMetricFollowsARecordAndGoesWithIt(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "watched", ringSpec(8))
	create(t, g, rec)
	// Nothing makes the Deployment available under envtest: Ready is False.
	g.Eventually(func() map[string]float64 { return readySeries(t, ns, "watched") }, timeout, poll).
		Should(Equal(map[string]float64{"True": 0, "False": 1, "Unknown": 0}))

	g.Expect(k8s.Delete(context.Background(), rec)).To(Succeed())
	g.Eventually(func() map[string]float64 { return readySeries(t, ns, "watched") }, timeout, poll).
		Should(BeEmpty(), "the series of a deleted Record")
}

// staleSeries returns the recbuf_record_reports_stale value of one Record,
// and whether it has a series.
func staleSeries(t *testing.T, namespace, name string) (float64, bool) {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != "recbuf_record_reports_stale" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == namespace && labels["name"] == name {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func TestObserveMetricsMarksStaleReports(t *testing.T) {
	tests := []struct {
		name      string
		reporting *metav1.Condition
		want      float64
	}{
		{"a Record whose pods went silent is stale", &metav1.Condition{Status: metav1.ConditionFalse, Reason: recbufv1alpha1.ReasonStale}, 1},
		{"a Record whose reports arrive is not stale", &metav1.Condition{Status: metav1.ConditionTrue, Reason: recbufv1alpha1.ReasonReportsFresh}, 0},
		{"a Record scaled to zero is not stale", &metav1.Condition{Status: metav1.ConditionFalse, Reason: recbufv1alpha1.ReasonScaledToZero}, 0},
		{"a Record awaiting its first report is not stale", &metav1.Condition{Status: metav1.ConditionUnknown, Reason: recbufv1alpha1.ReasonAwaitingReports}, 0},
		{"a Record without a Reporting condition yet is not stale", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := testRecord(func(r *recbufv1alpha1.Record) {
				r.Namespace = "metrics-unit"
				r.Name = tt.name
				if tt.reporting != nil {
					c := *tt.reporting
					c.Type = recbufv1alpha1.ConditionReporting
					meta.SetStatusCondition(&r.Status.Conditions, c)
				}
			})
			observeMetrics(rec)
			got, ok := staleSeries(t, rec.Namespace, rec.Name)
			if !ok {
				t.Fatalf("no recbuf_record_reports_stale series")
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			forgetMetrics(client.ObjectKeyFromObject(rec))
			if _, ok := staleSeries(t, rec.Namespace, rec.Name); ok {
				t.Errorf("the series outlived forgetMetrics")
			}
		})
	}
}

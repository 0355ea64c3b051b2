package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// recordReadyStatus is each Record's Ready condition as a metric of the
// manager, in cert-manager's certificate_ready_status shape: one series per
// possible status, 1 on the current one. An alert on
// recbuf_record_ready_status{condition="True"} == 0 needs no
// kube-state-metrics configuration.
var recordReadyStatus = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "recbuf_record_ready_status",
	Help: "The status of each Record's Ready condition: 1 on the series of its current status (True, False or Unknown), 0 on the others.",
}, []string{"namespace", "name", "condition"})

// recordReportsStale is 1 while a Record's Reporting condition is False
// with reason Stale: its buffer pods reported before and have been silent
// for longer than --report-stale-after, so its status counters are frozen.
// A Record scaled to zero or still awaiting its first report is 0: nothing
// went silent.
var recordReportsStale = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "recbuf_record_reports_stale",
	Help: "1 while a Record's buffer pods, which reported before, have sent no report for longer than the manager's --report-stale-after (Reporting=False, reason Stale); else 0.",
}, []string{"namespace", "name"})

// Metrics are the manager's metrics of Records, registered with
// controller-runtime's registry at init. They are listed so that tests can
// describe them: the chart's dashboard and alerts are checked against
// their names and labels.
func Metrics() []prometheus.Collector {
	return []prometheus.Collector{recordReadyStatus, recordReportsStale}
}

func init() {
	metrics.Registry.MustRegister(Metrics()...)
}

var conditionStatuses = []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown}

// observeMetrics sets rec's series from its status: Ready's (Unknown when
// the condition is not there yet) and whether its reports are stale.
func observeMetrics(rec *recbufv1alpha1.Record) {
	current := metav1.ConditionUnknown
	if c := meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionReady); c != nil {
		current = c.Status
	}
	for _, s := range conditionStatuses {
		v := 0.0
		if s == current {
			v = 1
		}
		recordReadyStatus.WithLabelValues(rec.Namespace, rec.Name, string(s)).Set(v)
	}
	stale := 0.0
	if c := meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionReporting); c != nil &&
		c.Status == metav1.ConditionFalse && c.Reason == recbufv1alpha1.ReasonStale {
		stale = 1
	}
	recordReportsStale.WithLabelValues(rec.Namespace, rec.Name).Set(stale)
}

// forgetMetrics removes the series of a Record that is gone or going, so
// that deleted Records do not linger as not ready.
func forgetMetrics(key types.NamespacedName) {
	recordReadyStatus.DeletePartialMatch(prometheus.Labels{"namespace": key.Namespace, "name": key.Name})
	recordReportsStale.DeletePartialMatch(prometheus.Labels{"namespace": key.Namespace, "name": key.Name})
}

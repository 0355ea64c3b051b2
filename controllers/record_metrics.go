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

func init() {
	metrics.Registry.MustRegister(recordReadyStatus)
}

var conditionStatuses = []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown}

// observeReady sets rec's Ready series from its status (Unknown when the
// condition is not there yet).
func observeReady(rec *recbufv1alpha1.Record) {
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
}

// forgetReady removes the series of a Record that is gone or going, so
// that deleted Records do not linger as not ready.
func forgetReady(key types.NamespacedName) {
	recordReadyStatus.DeletePartialMatch(prometheus.Labels{"namespace": key.Namespace, "name": key.Name})
}

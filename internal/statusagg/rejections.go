package statusagg

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// RejectReason says why the Collector ignored a report; it is the reason
// label of recbuf_reports_rejected_total.
type RejectReason string

// The reasons a report is ignored, in the order they are checked.
const (
	// RejectSubject: the subject is not <prefix>.<namespace>.<record>.<pod>,
	// or is not the subject of the Record and pod the body names.
	RejectSubject RejectReason = "subject_mismatch"
	// RejectUnknownRecord: no live Record of that namespace and name is
	// known to the manager (its controller has not admitted it).
	RejectUnknownRecord RejectReason = "unknown_record"
	// RejectUnsigned: the report has no signature header.
	RejectUnsigned RejectReason = "unsigned"
	// RejectBadSignature: the signature is not the body's under the
	// Record's report key.
	RejectBadSignature RejectReason = "bad_signature"
	// RejectMalformed: the body is no report.
	RejectMalformed RejectReason = "malformed"
	// RejectRecordUID: the report carries no recordUID, or another
	// incarnation's.
	RejectRecordUID RejectReason = "record_uid_mismatch"
	// RejectInvalidName: the pod name could not be written into the status
	// (not a DNS subdomain of at most 253 characters).
	RejectInvalidName RejectReason = "invalid_name"
	// RejectUnknownPod: the pod is not one of the Record's current pods.
	RejectUnknownPod RejectReason = "unknown_pod"
	// RejectClockSkew: the report's time is further from the manager's
	// clock than Options.MaxClockSkew (or it has none): a report captured
	// and sent again later, or a pod whose clock is far off.
	RejectClockSkew RejectReason = "clock_skew"
	// RejectReplayed: the report is not newer than the pod's last one.
	RejectReplayed RejectReason = "replayed"
)

var rejectReasons = []RejectReason{
	RejectSubject, RejectUnknownRecord, RejectUnsigned, RejectBadSignature, RejectMalformed,
	RejectRecordUID, RejectInvalidName, RejectUnknownPod, RejectClockSkew, RejectReplayed,
}

// reportsRejected counts the ignored reports by reason. It is a manager
// metric (controller-runtime's registry, served on the manager's metrics
// endpoint); every reason's series exists from the start at 0, so that an
// alert on its rate needs no absent().
var reportsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "recbuf_reports_rejected_total",
	Help: "Counter reports the manager ignored, by reason: not signed with the live Record's report key, subject and body disagreeing, another incarnation's recordUID, a pod that is not the Record's, a name no status can hold, a time too far from the manager's clock, or a replay.",
}, []string{"reason"})

// Metrics are the Collector's metrics, registered with controller-runtime's
// registry at init. They are listed so that tests can describe them: the
// chart's dashboard and alerts are checked against their names and labels.
func Metrics() []prometheus.Collector {
	return []prometheus.Collector{reportsRejected}
}

func init() {
	metrics.Registry.MustRegister(Metrics()...)
	for _, r := range rejectReasons {
		reportsRejected.WithLabelValues(string(r))
	}
}

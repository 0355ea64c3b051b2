package controllers

// This file assembles a Record's status: its inputs, the order in which
// the conditions (record_conditions.go) and counters (record_counters.go)
// are computed, the one patch, and when to look again.

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/natspolicy"
	"github.com/recbuf/recbuf/internal/statusagg"
)

// statusInputs is everything the status is computed from: what the phases
// observed, the reports, and the clock. The status functions are pure
// functions of a Record and its inputs, so they are tested without a client.
type statusInputs struct {
	now        time.Time
	staleAfter time.Duration
	// reportInterval is how often buffer pods report (silentAfter), unless
	// their reports say otherwise.
	reportInterval time.Duration
	// bufferMemoryCeiling is the manager's largest default memory limit
	// (insufficientMemory).
	bufferMemoryCeiling int64
	// settingsChanged is when the manager last changed the report settings
	// in the Record's ConfigMap (zero: not since it was created).
	settingsChanged time.Time

	// deployment and service are the children (nil: absent or not ours).
	deployment *appsv1.Deployment
	service    *corev1.Service
	// childErrs are the errors reconciling the children met.
	childErrs childErrors
	// natsRefusal says why the Record's NATS source is refused (zero: not).
	natsRefusal natspolicy.Refusal
	// consumerAuthRefusal says why consumer authentication is refused
	// ("": it is not).
	consumerAuthRefusal string
	// consumerAuthOptInRead says whether the Namespace's opt-in to
	// consumer authentication was read.
	consumerAuthOptInRead bool
	// record is the Record's name: its sidecar containers are named after
	// it (bufferStarted).
	record string
	// pods are the Record's buffer pods (record_pods.go judges them),
	// sidecarPods those of them that are app pods with the Record's
	// sidecar.
	pods, sidecarPods []corev1.Pod

	// aggregate sums the Record's fresh reports; state is the collector's
	// connection.
	aggregate statusagg.Aggregate
	state     statusagg.State

	// stream is what the stream phase saw (nil: no spec.persistence);
	// streamSampled is when status.stream was last written (zero: never,
	// by this manager).
	stream        *streamObservation
	streamSampled time.Time
}

// recheckMargin is added to recheck times: a requeue lands at or after its
// time, and the margin keeps it from landing a hair before the expiry it
// waits for, the clock being read by the collector and the reconciler
// apart. (Condition times are stored truncated to the second, which only
// makes their deadlines earlier, never later.)
const recheckMargin = 50 * time.Millisecond

// reconcileStatus computes the status from the scope and the reports,
// patches it when it changed, emits Events for condition transitions, and
// returns when the status should be looked at again without any event
// (reports going stale).
func (r *RecordReconciler) reconcileStatus(ctx context.Context, s *recordScope) (time.Duration, error) {
	key := client.ObjectKeyFromObject(s.record)
	in := statusInputs{
		now:                   r.clock(),
		staleAfter:            r.Reports.StaleAfter(),
		reportInterval:        r.Config.ReportInterval,
		bufferMemoryCeiling:   r.Config.BufferMemoryCeiling,
		settingsChanged:       settingsChanged(s.settings),
		deployment:            s.deployment,
		service:               s.service,
		childErrs:             s.childErrs,
		natsRefusal:           s.natsRefusal,
		consumerAuthRefusal:   s.consumerAuthRefusal,
		consumerAuthOptInRead: s.consumerAuthOptInRead,
		record:                s.record.Name,
		pods:                  s.pods,
		sidecarPods:           s.sidecarPods,
		aggregate:             r.Reports.Aggregate(key, s.record.UID),
		state:                 r.Reports.State(),
		stream:                s.stream,
		streamSampled:         r.streamSamples.get(key),
	}
	computeStatus(s.record, in)
	observeMetrics(s.record)
	recheck := recheckAfter(s.record, in)

	if equality.Semantic.DeepEqual(s.before.Status, s.record.Status) {
		return recheck, nil
	}
	if err := r.Client.Status().Patch(ctx, s.record, client.MergeFrom(s.before)); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("patching status of Record %s: %w", key, err)
	}
	if !equality.Semantic.DeepEqual(s.before.Status.Stream, s.record.Status.Stream) {
		r.streamSamples.set(key, in.now)
	}
	r.emitTransitions(s.before, s.record)
	s.log.V(1).Info("Status updated", "record", klog.KObj(s.record))
	return recheck, nil
}

// computeStatus writes rec's status from in. Fields that did not change
// keep their values, so that an unchanged status compares equal.
func computeStatus(rec *recbufv1alpha1.Record, in statusInputs) {
	rec.Status.ObservedGeneration = rec.Generation
	rec.Status.Subject = rec.EffectiveSubject()
	if in.service != nil {
		rec.Status.Endpoint = endpoint(rec)
	}
	pods := judgePods(in)
	setStalledCondition(rec, in)
	setReconcilingCondition(rec, in)
	setAvailableCondition(rec, in)
	setNATSConnectedCondition(rec, in, pods)
	setReportingCondition(rec, in)
	setStreamReadyCondition(rec, in)
	setCounters(rec, in, pods)
	setStreamStatus(rec, in)
	setSidecars(rec, in)
	setReadyCondition(rec, in)
}

// recheckAfter is when the status may change without any event: a fresh
// report expiring, a pod going silent, or the grace periods of
// setReportingCondition ending. 0 means not before the next event.
func recheckAfter(rec *recbufv1alpha1.Record, in statusInputs) time.Duration {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(in.now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if in.aggregate.Pods > 0 {
		consider(in.aggregate.NextExpiry)
	}
	pods := judgePods(in)
	for _, p := range pods {
		consider(p.silentAt)
	}
	if silent, _ := silentPods(pods); len(silent) > 0 {
		// A silent pod's next report may equal its last, which the
		// collector does not announce: look again after an interval.
		consider(in.now.Add(reportInterval(in.reportInterval)))
	}
	if in.state.Connected {
		consider(in.state.Since.Add(in.staleAfter))
	}
	if in.stream != nil || in.consumerAuthOptInRead {
		// No event says that the stream's state changed, that an
		// adopted stream appeared, or that the admin granted or withdrew
		// a Namespace's opt-in: they are looked at every report interval
		// (setStreamStatus writes the stream's state at most that often).
		consider(in.now.Add(reportInterval(in.reportInterval)))
	}
	if av := meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionAvailable); av != nil && av.Status == metav1.ConditionTrue {
		consider(av.LastTransitionTime.Add(in.staleAfter))
	}
	if next.IsZero() {
		return 0
	}
	return next.Sub(in.now) + recheckMargin
}

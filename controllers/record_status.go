package controllers

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/statusagg"
)

// statusInputs is everything the status is computed from: what the phases
// observed, the reports, and the clock. The functions of this file are pure
// functions of a Record and its inputs, so they are tested without a client.
type statusInputs struct {
	now        time.Time
	staleAfter time.Duration

	// deployment and service are the children (nil: absent or not ours).
	deployment *appsv1.Deployment
	service    *corev1.Service
	// deploymentErr and serviceErr are the errors reconciling them met.
	deploymentErr, serviceErr error

	// aggregate sums the Record's fresh reports; state is the collector's
	// connection.
	aggregate statusagg.Aggregate
	state     statusagg.State
}

// maxMessageLen bounds condition messages that quote the API server.
const maxMessageLen = 1024

// recheckMargin is added to recheck times: condition times are stored at
// one-second precision, and a report is stale only after its expiry.
const recheckMargin = time.Second

// computeStatus writes rec's status from in. Fields that did not change
// keep their values, so that an unchanged status compares equal.
func computeStatus(rec *recbufv1alpha1.Record, in statusInputs) {
	rec.Status.ObservedGeneration = rec.Generation
	rec.Status.Subject = rec.EffectiveSubject()
	if in.service != nil {
		rec.Status.Endpoint = endpoint(rec)
	}
	setStalledCondition(rec, in)
	setReconcilingCondition(rec, in)
	setAvailableCondition(rec, in)
	setNATSConnectedCondition(rec, in)
	setReportingCondition(rec, in)
	setCounters(rec, in)
	setReadyCondition(rec, in)
}

// setCondition sets one condition; its transition time moves only when its
// status changes.
func setCondition(rec *recbufv1alpha1.Record, now time.Time, condType string, status metav1.ConditionStatus, reason, message string) {
	if len(message) > maxMessageLen {
		message = message[:maxMessageLen-3] + "..."
	}
	meta.SetStatusCondition(&rec.Status.Conditions, metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: rec.Generation,
		LastTransitionTime: metav1.NewTime(now.Truncate(time.Second)),
	})
}

// stalledCheck is one reason a rollout cannot progress; checks run in
// order and the first that fails wins.
type stalledCheck func(rec *recbufv1alpha1.Record, in statusInputs) (reason, message string, stalled bool)

var stalledChecks = []stalledCheck{childConflict, childRefused, progressDeadlineExceeded, replicaFailure}

// childErr is the error reconciling one kind of child met.
type childErr struct {
	kind string
	err  error
}

// childErrs are the children's errors, in the order they are reported.
func childErrs(in statusInputs) []childErr {
	return []childErr{{"Deployment", in.deploymentErr}, {"Service", in.serviceErr}}
}

// childConflict: the child's name is taken by an object that is not ours.
func childConflict(rec *recbufv1alpha1.Record, in statusInputs) (string, string, bool) {
	for _, c := range childErrs(in) {
		if isChildConflict(c.err) {
			return recbufv1alpha1.ReasonChildConflict, fmt.Sprintf(
				"a %s named %s exists that this Record does not manage: delete it, or rename the Record",
				c.kind, rec.ChildName()), true
		}
	}
	return "", "", false
}

// childRefused: the API server refused the child as built.
func childRefused(_ *recbufv1alpha1.Record, in statusInputs) (string, string, bool) {
	for _, c := range childErrs(in) {
		if isChildRefusal(c.err) {
			return recbufv1alpha1.ReasonChildRefused, fmt.Sprintf("the API server refused the %s: %v", c.kind, c.err), true
		}
	}
	return "", "", false
}

// isChildConflict: the child's name is taken by an object that is not ours.
func isChildConflict(err error) bool {
	return isConflict(err) || apierrors.IsAlreadyExists(err)
}

// isChildRefusal: the API server refused the child as built; retrying the
// same object cannot help.
func isChildRefusal(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err)
}

// progressDeadlineExceeded: the Deployment controller gave up waiting.
func progressDeadlineExceeded(_ *recbufv1alpha1.Record, in statusInputs) (string, string, bool) {
	c := deploymentCondition(in.deployment, appsv1.DeploymentProgressing)
	if c != nil && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
		return recbufv1alpha1.ReasonProgressDeadlineExceeded, c.Message, true
	}
	return "", "", false
}

// replicaFailure: pods cannot be created.
func replicaFailure(_ *recbufv1alpha1.Record, in statusInputs) (string, string, bool) {
	c := deploymentCondition(in.deployment, appsv1.DeploymentReplicaFailure)
	if c != nil && c.Status == corev1.ConditionTrue {
		return recbufv1alpha1.ReasonReplicaFailure, c.Message, true
	}
	return "", "", false
}

func deploymentCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	if d == nil {
		return nil
	}
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

// setStalledCondition: True with the first failing stalled check.
func setStalledCondition(rec *recbufv1alpha1.Record, in statusInputs) {
	for _, check := range stalledChecks {
		if reason, message, stalled := check(rec, in); stalled {
			setCondition(rec, in.now, recbufv1alpha1.ConditionStalled, metav1.ConditionTrue, reason, message)
			return
		}
	}
	setCondition(rec, in.now, recbufv1alpha1.ConditionStalled, metav1.ConditionFalse,
		recbufv1alpha1.ReasonProgressing, "nothing blocks the rollout")
}

// transientChildErr is the first child error that no stalled check
// explains: one the manager retries and expects to pass.
func transientChildErr(in statusInputs) (kind string, err error) {
	for _, c := range childErrs(in) {
		if c.err != nil && !isChildConflict(c.err) && !isChildRefusal(c.err) {
			return c.kind, c.err
		}
	}
	return "", nil
}

// setReconcilingCondition: True while the Deployment rolls out, judged as
// `kubectl rollout status` does, or while applying a child failed and is
// retried (ReconcileError: still in progress as kstatus sees it, not
// stalled). A stalled rollout is not progressing, so Reconciling is then
// False with Stalled's reason (kstatus reads whichever of the two it meets
// first).
func setReconcilingCondition(rec *recbufv1alpha1.Record, in statusInputs) {
	set := func(status metav1.ConditionStatus, reason, format string, args ...any) {
		setCondition(rec, in.now, recbufv1alpha1.ConditionReconciling, status, reason, fmt.Sprintf(format, args...))
	}
	if st := meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionStalled); st != nil && st.Status == metav1.ConditionTrue {
		set(metav1.ConditionFalse, st.Reason, "the rollout is stalled: %s", st.Message)
		return
	}
	if kind, err := transientChildErr(in); err != nil {
		set(metav1.ConditionTrue, recbufv1alpha1.ReasonReconcileError, "reconciling the %s failed, retrying: %v", kind, err)
		return
	}
	d := in.deployment
	if d == nil {
		set(metav1.ConditionTrue, recbufv1alpha1.ReasonRollingOut, "waiting for Deployment %s to be created", rec.ChildName())
		return
	}
	want := ptr.Deref(d.Spec.Replicas, 1)
	st := d.Status
	switch {
	case st.ObservedGeneration < d.Generation:
		set(metav1.ConditionTrue, recbufv1alpha1.ReasonRollingOut, "waiting for the Deployment controller to observe generation %d", d.Generation)
	case st.UpdatedReplicas < want:
		set(metav1.ConditionTrue, recbufv1alpha1.ReasonRollingOut, "%d of %d buffer pods updated", st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		set(metav1.ConditionTrue, recbufv1alpha1.ReasonRollingOut, "%d old buffer pods pending termination", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		set(metav1.ConditionTrue, recbufv1alpha1.ReasonRollingOut, "%d of %d updated buffer pods available", st.AvailableReplicas, st.UpdatedReplicas)
	default:
		set(metav1.ConditionFalse, recbufv1alpha1.ReasonUpToDate, "all %d buffer pods run the current spec", want)
	}
}

// setAvailableCondition mirrors the Deployment's Available condition.
func setAvailableCondition(rec *recbufv1alpha1.Record, in statusInputs) {
	set := func(status metav1.ConditionStatus, reason, message string) {
		setCondition(rec, in.now, recbufv1alpha1.ConditionAvailable, status, reason, message)
	}
	d := in.deployment
	if ptr.Deref(rec.Spec.Replicas, 1) == 0 {
		set(metav1.ConditionFalse, recbufv1alpha1.ReasonScaledToZero, "spec.replicas is 0: no buffer pod serves the record")
		return
	}
	if d == nil {
		set(metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentNotFound, fmt.Sprintf("Deployment %s does not exist", rec.ChildName()))
		return
	}
	counts := fmt.Sprintf("%d of %d buffer pods available", d.Status.AvailableReplicas, ptr.Deref(d.Spec.Replicas, 1))
	c := deploymentCondition(d, appsv1.DeploymentAvailable)
	switch {
	case c == nil:
		set(metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable, counts+": the Deployment has not reported availability yet")
	case c.Status == corev1.ConditionTrue:
		set(metav1.ConditionTrue, recbufv1alpha1.ReasonMinimumReplicasAvailable, counts)
	default:
		set(metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable, counts+": "+c.Message)
	}
}

// setNATSConnectedCondition: from the pods' reports; Unknown when there
// are none to tell.
func setNATSConnectedCondition(rec *recbufv1alpha1.Record, in statusInputs) {
	set := func(status metav1.ConditionStatus, reason, message string) {
		setCondition(rec, in.now, recbufv1alpha1.ConditionNATSConnected, status, reason, message)
	}
	a := in.aggregate
	switch {
	case a.Pods > 0 && a.ConnectedPods == a.Pods:
		set(metav1.ConditionTrue, recbufv1alpha1.ReasonConnected, fmt.Sprintf("all %d reporting buffer pods are connected to NATS", a.Pods))
	case a.Pods > 0:
		set(metav1.ConditionFalse, recbufv1alpha1.ReasonDisconnected, fmt.Sprintf("%d of %d reporting buffer pods are not connected to NATS: %s",
			a.Pods-a.ConnectedPods, a.Pods, disconnectedPods(a.PodReports)))
	case !in.state.Connected:
		set(metav1.ConditionUnknown, recbufv1alpha1.ReasonManagerDisconnected, managerDisconnected(in))
	default:
		set(metav1.ConditionUnknown, recbufv1alpha1.ReasonNoReports, fmt.Sprintf("no buffer pod reported within %s", in.staleAfter))
	}
}

// maxNamedPods bounds the pod names a condition message lists.
const maxNamedPods = 5

// disconnectedPods names the pods whose intake was not connected, the first
// few by name.
func disconnectedPods(reports []statusagg.PodReport) string {
	var names []string
	n := 0
	for _, p := range reports {
		if p.Connected {
			continue
		}
		if n++; n <= maxNamedPods {
			names = append(names, p.Pod)
		}
	}
	if n > maxNamedPods {
		names = append(names, fmt.Sprintf("and %d more", n-maxNamedPods))
	}
	return strings.Join(names, ", ")
}

func managerDisconnected(in statusInputs) string {
	return fmt.Sprintf("the manager is not connected to NATS at %s, so it receives no reports", in.state.URL)
}

// setReportingCondition says whether the counters are current.
func setReportingCondition(rec *recbufv1alpha1.Record, in statusInputs) {
	set := func(status metav1.ConditionStatus, reason, message string) {
		setCondition(rec, in.now, recbufv1alpha1.ConditionReporting, status, reason, message)
	}
	cur := meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionReporting)
	switch {
	case in.aggregate.Pods > 0:
		set(metav1.ConditionTrue, recbufv1alpha1.ReasonReportsFresh, fmt.Sprintf("%d buffer pods reporting", in.aggregate.Pods))
	case ptr.Deref(rec.Spec.Replicas, 1) == 0:
		set(metav1.ConditionFalse, recbufv1alpha1.ReasonScaledToZero, "spec.replicas is 0: no buffer pod reports")
	case !in.state.Connected:
		set(metav1.ConditionUnknown, recbufv1alpha1.ReasonManagerDisconnected, managerDisconnected(in))
	case in.now.Sub(in.state.Since) < in.staleAfter:
		// The manager has not listened long enough to miss a report: keep
		// what was known before it (re)connected.
		if cur == nil {
			set(metav1.ConditionUnknown, recbufv1alpha1.ReasonAwaitingReports, "waiting for the buffer pods' first report")
		}
	case rec.Status.LastReportTime != nil || (cur != nil && cur.Reason == recbufv1alpha1.ReasonReportsFresh) || availableFor(rec, in.now) >= in.staleAfter:
		set(metav1.ConditionFalse, recbufv1alpha1.ReasonStale, fmt.Sprintf("no buffer pod reported for more than %s: the counters are the last received", in.staleAfter))
	default:
		set(metav1.ConditionUnknown, recbufv1alpha1.ReasonAwaitingReports, "waiting for the buffer pods' first report")
	}
}

// availableFor is how long the Record has been Available (0 if it is not).
func availableFor(rec *recbufv1alpha1.Record, now time.Time) time.Duration {
	c := meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionAvailable)
	if c == nil || c.Status != metav1.ConditionTrue {
		return 0
	}
	return now.Sub(c.LastTransitionTime.Time)
}

// setCounters copies the aggregate's sums into the status when they
// changed; with no fresh report they keep their last values.
// lastReportTime moves only with them: an idle Record's identical reports
// cause no status write.
func setCounters(rec *recbufv1alpha1.Record, in statusInputs) {
	st := &rec.Status
	a := in.aggregate
	if a.Pods == 0 {
		st.ReportingPods = 0
		st.Pods = nil
		return
	}
	next := *st
	next.ReportingPods = int32(min(a.Pods, math.MaxInt32))
	c := a.Counters
	next.Produced = sat(c.Produced)
	next.Delivered = sat(c.Delivered)
	next.Subscribers = c.Subscribers
	next.LagEvents = sat(c.LagEvents)
	next.LaggedValues = sat(c.LaggedValues)
	next.Skipped = sat(c.Skipped)
	next.Overwrites = sat(c.Overwrites)
	next.Dropped = sat(c.Dropped)
	next.LastMessageTime = metaTime(c.LastMessageTime)
	next.Pods = podStatuses(a.PodReports)
	if countersEqual(*st, next) {
		return
	}
	next.LastReportTime = metaTime(a.LastReport)
	*st = next
}

func countersEqual(a, b recbufv1alpha1.RecordStatus) bool {
	return a.ReportingPods == b.ReportingPods && a.Produced == b.Produced && a.Delivered == b.Delivered &&
		a.Subscribers == b.Subscribers && a.LagEvents == b.LagEvents && a.LaggedValues == b.LaggedValues &&
		a.Skipped == b.Skipped && a.Overwrites == b.Overwrites && a.Dropped == b.Dropped &&
		timeEqual(a.LastMessageTime, b.LastMessageTime) && slices.Equal(a.Pods, b.Pods)
}

// podStatuses is the per-pod detail of the status: the reports as they
// come (sorted by pod), at most MaxPodStatuses of them.
func podStatuses(reports []statusagg.PodReport) []recbufv1alpha1.RecordPodStatus {
	if len(reports) == 0 {
		return nil
	}
	reports = reports[:min(len(reports), recbufv1alpha1.MaxPodStatuses)]
	pods := make([]recbufv1alpha1.RecordPodStatus, len(reports))
	for i, r := range reports {
		pods[i] = recbufv1alpha1.RecordPodStatus{
			Name:        r.Pod,
			Connected:   r.Connected,
			Produced:    sat(r.Counters.Produced),
			Subscribers: r.Counters.Subscribers,
			Dropped:     sat(r.Counters.Dropped),
		}
	}
	return pods
}

func timeEqual(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}

// metaTime is t at the precision the API stores (seconds); nil for zero.
func metaTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return ptr.To(metav1.NewTime(t.Truncate(time.Second)))
}

// sat converts a counter to the API's int64, saturating.
func sat(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

// setReadyCondition summarises: the first failing of Stalled, Reconciling
// with ReconcileError, Available and NATSConnected, with its reason and
// message. A failed reconcile comes before Available, whose message (a
// missing Deployment, say) it may explain.
func setReadyCondition(rec *recbufv1alpha1.Record, in statusInputs) {
	conds := rec.Status.Conditions
	notReady := func(c *metav1.Condition) {
		setCondition(rec, in.now, recbufv1alpha1.ConditionReady, metav1.ConditionFalse, c.Reason, c.Message)
	}
	if c := meta.FindStatusCondition(conds, recbufv1alpha1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue {
		notReady(c)
		return
	}
	if c := meta.FindStatusCondition(conds, recbufv1alpha1.ConditionReconciling); c != nil && c.Reason == recbufv1alpha1.ReasonReconcileError {
		notReady(c)
		return
	}
	av := meta.FindStatusCondition(conds, recbufv1alpha1.ConditionAvailable)
	if av == nil || av.Status != metav1.ConditionTrue {
		if av != nil {
			notReady(av)
		}
		return
	}
	if c := meta.FindStatusCondition(conds, recbufv1alpha1.ConditionNATSConnected); c != nil && c.Status == metav1.ConditionFalse {
		notReady(c)
		return
	}
	setCondition(rec, in.now, recbufv1alpha1.ConditionReady, metav1.ConditionTrue, recbufv1alpha1.ReasonReady, av.Message)
}

// recheckAfter is when the status may change without any event: a fresh
// report expiring, or the grace periods of setReportingCondition ending.
// 0 means not before the next event.
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
	if in.state.Connected {
		consider(in.state.Since.Add(in.staleAfter))
	}
	if av := meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionAvailable); av != nil && av.Status == metav1.ConditionTrue {
		consider(av.LastTransitionTime.Add(in.staleAfter))
	}
	if next.IsZero() {
		return 0
	}
	return next.Sub(in.now) + recheckMargin
}

// transition is a condition change worth an Event.
type transition struct {
	condition metav1.Condition
	eventType string
}

// eventConditions are the conditions whose transitions make Events;
// Available and Reconciling are told by Ready and the Deployment's own.
var eventConditions = []string{
	recbufv1alpha1.ConditionReady,
	recbufv1alpha1.ConditionStalled,
	recbufv1alpha1.ConditionNATSConnected,
	recbufv1alpha1.ConditionReporting,
}

// conditionTransitions lists the meaningful changes from before to after:
// a condition whose status became True or False (not Unknown), and a first
// Stalled=True. A new Record's first, expected states make no Event.
func conditionTransitions(before, after []metav1.Condition) []transition {
	var out []transition
	for _, t := range eventConditions {
		c := meta.FindStatusCondition(after, t)
		if c == nil || c.Status == metav1.ConditionUnknown {
			continue
		}
		old := meta.FindStatusCondition(before, t)
		bad := isBad(c)
		firstStall := old == nil && bad && t == recbufv1alpha1.ConditionStalled
		changed := old != nil && old.Status != c.Status
		if !firstStall && !changed {
			continue
		}
		eventType := corev1.EventTypeNormal
		if bad {
			eventType = corev1.EventTypeWarning
		}
		out = append(out, transition{condition: *c, eventType: eventType})
	}
	return out
}

// isBad says whether c reports a problem: Stalled True, or any other
// condition False for a reason other than being scaled to zero.
func isBad(c *metav1.Condition) bool {
	if c.Type == recbufv1alpha1.ConditionStalled {
		return c.Status == metav1.ConditionTrue
	}
	return c.Status == metav1.ConditionFalse && c.Reason != recbufv1alpha1.ReasonScaledToZero
}

package controllers

// This file holds one pure setter per condition of a Record, and the checks
// they are made of.

import (
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// maxMessageLen bounds condition messages that quote the API server.
const maxMessageLen = 1024

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

var stalledChecks = []stalledCheck{natsSourceRefused, consumerAuthenticationRefused, childConflict, insufficientMemory, childRefused, streamStalled, progressDeadlineExceeded, replicaFailure}

// natsSourceRefused: the Record's NATS credentials would go where the
// cluster admin does not allow (record_policy.go).
func natsSourceRefused(_ *recbufv1alpha1.Record, in statusInputs) (string, string, bool) {
	return in.natsRefusal.Reason, in.natsRefusal.Message, in.natsRefusal.Refused()
}

// consumerAuthenticationRefused: the namespace is not opted in to consumer
// authentication (record_consumerauth.go).
func consumerAuthenticationRefused(_ *recbufv1alpha1.Record, in statusInputs) (string, string, bool) {
	return recbufv1alpha1.ReasonConsumerAuthenticationNotAllowed, in.consumerAuthRefusal, in.consumerAuthRefusal != ""
}

// childConflict: the child's name is taken by an object that is not ours.
func childConflict(rec *recbufv1alpha1.Record, in statusInputs) (string, string, bool) {
	for _, c := range in.childErrs.inOrder() {
		if isChildConflict(c.err) {
			// Secrets do not conflict: a report key
			// Secret that exists is left alone (record_reportkey.go).
			return recbufv1alpha1.ReasonChildConflict, fmt.Sprintf(
				"a %s named %s exists that this Record does not manage: delete it, or rename the Record",
				c.kind, rec.ChildName()), true
		}
	}
	return "", "", false
}

// childRefused: the API server refused the child as built.
func childRefused(_ *recbufv1alpha1.Record, in statusInputs) (string, string, bool) {
	for _, c := range in.childErrs.inOrder() {
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
func transientChildErr(in statusInputs) (kind childKind, err error) {
	for _, c := range in.childErrs.inOrder() {
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
	case d.Status.ObservedGeneration < d.Generation:
		// Its conditions describe the spec before: scaled up from zero, a
		// Deployment is Available until its controller catches up.
		set(metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable, fmt.Sprintf("%s: waiting for the Deployment controller to observe generation %d", counts, d.Generation))
	case c == nil:
		set(metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable, counts+": the Deployment has not reported availability yet")
	case c.Status != corev1.ConditionTrue:
		set(metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable, counts+": "+c.Message)
	case d.Status.AvailableReplicas == 0:
		// Minimum availability may be zero pods; a consumer needs one.
		set(metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable, counts+": no buffer pod is ready to serve consumers")
	default:
		set(metav1.ConditionTrue, recbufv1alpha1.ReasonMinimumReplicasAvailable, counts)
	}
}

// setNATSConnectedCondition: False naming the running pods gone silent,
// True when pods report and none is silent, Unknown when nothing tells.
func setNATSConnectedCondition(rec *recbufv1alpha1.Record, in statusInputs, pods []podState) {
	set := func(status metav1.ConditionStatus, reason, message string) {
		setCondition(rec, in.now, recbufv1alpha1.ConditionNATSConnected, status, reason, message)
	}
	silent, after := silentPods(pods)
	switch {
	case len(silent) > 0:
		set(metav1.ConditionFalse, recbufv1alpha1.ReasonDisconnected, fmt.Sprintf(
			"%d of %d buffer pods are not connected to NATS (running, but no report for %s): %s",
			len(silent), len(judgedPods(pods)), after, namedPods(silent)))
	case in.aggregate.Pods > 0:
		set(metav1.ConditionTrue, recbufv1alpha1.ReasonConnected, fmt.Sprintf("all %d reporting buffer pods are connected to NATS", in.aggregate.Pods))
	case !in.state.Connected:
		set(metav1.ConditionUnknown, recbufv1alpha1.ReasonManagerDisconnected, managerDisconnected(in))
	default:
		set(metav1.ConditionUnknown, recbufv1alpha1.ReasonNoReports, fmt.Sprintf("no buffer pod reported within %s", in.staleAfter))
	}
}

// maxNamedPods bounds the pod names a condition message lists.
const maxNamedPods = 5

// namedPods lists names, the first few of them.
func namedPods(names []string) string {
	if len(names) > maxNamedPods {
		names = append(names[:maxNamedPods:maxNamedPods], fmt.Sprintf("and %d more", len(names)-maxNamedPods))
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

// readyCheck is one thing Ready needs; failed says it is missing, with the
// reason and message Ready then takes.
type readyCheck func(conds []metav1.Condition) (reason, message string, failed bool)

// readyChecks run in order; the first that fails makes Ready False. A failed
// reconcile comes before Available, whose message (a missing Deployment,
// say) it may explain.
var readyChecks = []readyCheck{
	failsWhen(recbufv1alpha1.ConditionStalled, func(c *metav1.Condition) bool { return c.Status == metav1.ConditionTrue }),
	failsWhen(recbufv1alpha1.ConditionReconciling, func(c *metav1.Condition) bool { return c.Reason == recbufv1alpha1.ReasonReconcileError }),
	failsWhen(recbufv1alpha1.ConditionAvailable, func(c *metav1.Condition) bool { return c.Status != metav1.ConditionTrue }),
	failsWhen(recbufv1alpha1.ConditionNATSConnected, func(c *metav1.Condition) bool { return c.Status == metav1.ConditionFalse }),
	failsWhen(recbufv1alpha1.ConditionStreamReady, func(c *metav1.Condition) bool { return c.Status == metav1.ConditionFalse }),
}

// failsWhen is the check that condition condType, when present, is not bad.
func failsWhen(condType string, bad func(*metav1.Condition) bool) readyCheck {
	return func(conds []metav1.Condition) (string, string, bool) {
		if c := meta.FindStatusCondition(conds, condType); c != nil && bad(c) {
			return c.Reason, c.Message, true
		}
		return "", "", false
	}
}

// setReadyCondition summarises: False with the first failing ready check's
// reason and message, else True with Available's message.
func setReadyCondition(rec *recbufv1alpha1.Record, in statusInputs) {
	conds := rec.Status.Conditions
	for _, check := range readyChecks {
		if reason, message, failed := check(conds); failed {
			setCondition(rec, in.now, recbufv1alpha1.ConditionReady, metav1.ConditionFalse, reason, message)
			return
		}
	}
	av := meta.FindStatusCondition(conds, recbufv1alpha1.ConditionAvailable)
	if av == nil {
		// computeStatus sets Available first; without it there is nothing to say.
		return
	}
	setCondition(rec, in.now, recbufv1alpha1.ConditionReady, metav1.ConditionTrue, recbufv1alpha1.ReasonReady, av.Message)
}

package controllers

// This file turns condition transitions into Events.

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// emitTransitions records an Event for each meaningful condition change
// from before to after, with the condition's reason and message.
func (r *RecordReconciler) emitTransitions(before, after *recbufv1alpha1.Record) {
	for _, t := range conditionTransitions(before.Status.Conditions, after.Status.Conditions) {
		r.Recorder.Eventf(after, nil, t.eventType, t.condition.Reason, t.condition.Type, "%s", t.condition.Message)
	}
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
	recbufv1alpha1.ConditionStreamReady,
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

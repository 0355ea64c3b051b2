package controllers

import (
	"fmt"
	"math"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// setSidecars counts the app pods running the Record's injected buffer and
// those admitted with an older generation of it, and sets
// SidecarsCurrent: present only while there are such pods, so that a
// Record read through its Deployment alone keeps the status it had.
func setSidecars(rec *recbufv1alpha1.Record, in statusInputs) {
	var running, outdated int
	for i := range in.sidecarPods {
		pod := &in.sidecarPods[i]
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		running++
		if injectedGenerations(pod)[rec.Name] < rec.Generation {
			outdated++
		}
	}
	rec.Status.Sidecars = int32(min(running, math.MaxInt32))
	rec.Status.OutdatedSidecars = int32(min(outdated, math.MaxInt32))
	if running == 0 {
		meta.RemoveStatusCondition(&rec.Status.Conditions, recbufv1alpha1.ConditionSidecarsCurrent)
		return
	}
	c := metav1.Condition{
		Type: recbufv1alpha1.ConditionSidecarsCurrent, Status: metav1.ConditionTrue, ObservedGeneration: rec.Generation,
		Reason:  recbufv1alpha1.ReasonSidecarsCurrent,
		Message: fmt.Sprintf("%d app pods run this Record's buffer as a sidecar, all admitted at generation %d", running, rec.Generation),
	}
	if outdated > 0 {
		c.Status, c.Reason = metav1.ConditionFalse, recbufv1alpha1.ReasonOutdatedSidecars
		c.Message = fmt.Sprintf("%d of %d app pods with this Record's sidecar were admitted with an older spec (before generation %d): they keep it until they are recreated, e.g. kubectl rollout restart of their Deployment",
			outdated, running, rec.Generation)
	}
	meta.SetStatusCondition(&rec.Status.Conditions, c)
}

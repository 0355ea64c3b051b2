package controllers

import (
	"fmt"
	"math"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
)

// setSidecars counts the app pods running the Record's injected buffer and
// those admitted with an older generation of it, and sets
// SidecarsCurrent: present only while there are such pods, so that a
// Record read through its Deployment alone keeps the status it had. Like
// the setters in record_conditions.go it is a pure function of the Record
// and in: the transition time is in.now, the observed generation the
// Record's, and the message is capped (setCondition).
func setSidecars(rec *recbufv1alpha1.Record, in statusInputs) {
	var running, outdated int
	for i := range in.sidecarPods {
		pod := &in.sidecarPods[i]
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		running++
		if bufferpod.InjectedGenerations(pod)[rec.Name] < rec.Generation {
			outdated++
		}
	}
	rec.Status.Sidecars = int32(min(running, math.MaxInt32))
	rec.Status.OutdatedSidecars = int32(min(outdated, math.MaxInt32))
	switch {
	case running == 0:
		meta.RemoveStatusCondition(&rec.Status.Conditions, recbufv1alpha1.ConditionSidecarsCurrent)
	case outdated > 0:
		setCondition(rec, in.now, recbufv1alpha1.ConditionSidecarsCurrent, metav1.ConditionFalse, recbufv1alpha1.ReasonOutdatedSidecars, fmt.Sprintf(
			"%d of %d app pods with this Record's sidecar were admitted with an older spec (before generation %d): they keep it until they are recreated, e.g. kubectl rollout restart of their Deployment",
			outdated, running, rec.Generation))
	default:
		setCondition(rec, in.now, recbufv1alpha1.ConditionSidecarsCurrent, metav1.ConditionTrue, recbufv1alpha1.ReasonSidecarsCurrent, fmt.Sprintf(
			"%d app pods run this Record's buffer as a sidecar, all admitted at generation %d", running, rec.Generation))
	}
}

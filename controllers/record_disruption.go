package controllers

import (
	"context"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// reconcileDisruptionBudget keeps a PodDisruptionBudget for a Record of
// more than one replica: node drains and other voluntary evictions then
// take its buffer pods one at a time, so that the record stays served
// while they move (each moved pod starts with an empty buffer). A Record of
// one replica or none has none: a budget that allows no eviction would
// block every drain of its node, and one that allows one protects nothing.
// The budget is deleted when the Record scales down to one, and garbage
// collected with the Record.
func (r *RecordReconciler) reconcileDisruptionBudget(ctx context.Context, s *recordScope) error {
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: childMeta(s.record)}
	if ptr.Deref(s.record.Spec.Replicas, 1) <= 1 {
		return r.deleteChild(ctx, s, kindDisruptionBudget, pdb)
	}
	_, err := r.reconcileChild(ctx, s, kindDisruptionBudget, pdb, func() { mutateDisruptionBudget(pdb, s.record) })
	return err
}

// mutateDisruptionBudget sets the fields recbuf owns on pdb.
func mutateDisruptionBudget(pdb *policyv1.PodDisruptionBudget, rec *recbufv1alpha1.Record) {
	pdb.Labels = mergeLabels(pdb.Labels, childLabels(rec))
	pdb.Spec.Selector = &metav1.LabelSelector{MatchLabels: selectorLabels(rec)}
	// One at a time whatever the replicas: maxUnavailable follows a scale
	// without a change here, as minAvailable would not.
	pdb.Spec.MaxUnavailable = ptr.To(intstr.FromInt32(1))
	pdb.Spec.MinAvailable = nil
	// A pod that is not ready serves no one: evicting it costs nothing,
	// and keeping it would let a crash-looping pod block a drain.
	pdb.Spec.UnhealthyPodEvictionPolicy = ptr.To(policyv1.AlwaysAllow)
}

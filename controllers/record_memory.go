package controllers

// This file sizes a Record's buffer container from what the Record
// declares (package sizing holds the formula), and refuses to roll out
// pods that could not hold it.

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/sizing"
)

// defaultCPURequest is the buffer container's CPU request when the Record
// sets no resources: a buffer process idles most of the time.
var defaultCPURequest = resource.MustParse("10m")

// declaredMemory is what rec declares that sizes its buffer process, with
// the manager's ceiling (ceiling <= 0: sizing.DefaultCeiling).
func declaredMemory(rec *recbufv1alpha1.Record, ceiling int64) sizing.Declared {
	d := sizing.Declared{
		MaxMessageBytes: int64(ptr.Deref(rec.Spec.MaxMessageBytes, recbufv1alpha1.DefaultMaxMessageBytes)),
		Ceiling:         ceiling,
	}
	b := rec.Spec.Buffer
	if b.Type == recbufv1alpha1.BufferTypeSpmcRing {
		d.Capacity = int64(ptr.Deref(b.Capacity, 1))
		if b.MaxBytes != nil {
			// Value rounds a fraction of a byte up.
			d.MaxBytes = b.MaxBytes.Value()
		}
	}
	if c := rec.Spec.Consumers; c != nil && c.MaxStreams != nil {
		d.MaxStreams = int64(*c.MaxStreams)
	}
	if r := rec.Spec.Resources; r != nil {
		if l, ok := r.Limits[corev1.ResourceMemory]; ok {
			d.Limit = l.Value()
		}
	}
	return d
}

// bufferMemory is the memory plan of rec's buffer process; its error, a
// *sizing.DoesNotFitError, says the Record does not fit.
func bufferMemory(rec *recbufv1alpha1.Record, cfg Config) (sizing.Plan, error) {
	return sizing.Size(declaredMemory(rec, cfg.BufferMemoryCeiling))
}

// defaultResources are the buffer container's resources when the Record
// sets none: the plan's memory request (the steady state: what a full ring
// keeps) and limit (the worst case, with the intake queue full), and a
// small CPU request.
func defaultResources(p sizing.Plan) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    defaultCPURequest,
			corev1.ResourceMemory: *resource.NewQuantity(p.Request, resource.BinarySI),
		},
		Limits: corev1.ResourceList{corev1.ResourceMemory: *resource.NewQuantity(p.Limit, resource.BinarySI)},
	}
}

// memoryLimitEnv hands the buffer process its container's memory limit in
// bytes, from which it sets the Go runtime's soft limit
// (sizing.GoMemoryLimit). The downward API reads the limit the kubelet
// enforces, whoever set it; without one, it gives the node's allocatable
// memory.
func memoryLimitEnv(container string) corev1.EnvVar {
	return corev1.EnvVar{
		Name: sizing.MemoryLimitEnv,
		ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
			ContainerName: container, Resource: "limits.memory", Divisor: resource.MustParse("1"),
		}},
	}
}

// insufficientMemory: what the Record declares cannot fit in the memory
// limit its pods would run with.
func insufficientMemory(rec *recbufv1alpha1.Record, in statusInputs) (string, string, bool) {
	if _, err := sizing.Size(declaredMemory(rec, in.bufferMemoryCeiling)); err != nil {
		return recbufv1alpha1.ReasonInsufficientMemory, fmt.Sprintf("Deployment %s left as it was: %v", rec.ChildName(), err), true
	}
	return "", "", false
}

// observeDeployment reads the Record's Deployment without changing it, for
// a Record whose pods are not to be rolled out (insufficientMemory): the
// status still describes the pods that run.
func (r *RecordReconciler) observeDeployment(ctx context.Context, s *recordScope) error {
	d := &appsv1.Deployment{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.record.Namespace, Name: s.record.ChildName()}, d)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("reading Deployment %s: %w", s.record.ChildName(), err)
	}
	if metav1.IsControlledBy(d, s.record) {
		s.deployment = d
	}
	return nil
}

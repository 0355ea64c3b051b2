package controllers

// This file refuses to roll out the pods of a Record that could not hold
// what it declares (package bufferpod sizes the container, package sizing
// holds the formula).

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
	"github.com/recbuf/recbuf/internal/sizing"
)

// insufficientMemory: what the Record declares cannot fit in the memory
// limit its pods would run with.
func insufficientMemory(rec *recbufv1alpha1.Record, in statusInputs) (string, string, bool) {
	if _, err := sizing.Size(bufferpod.DeclaredMemory(rec, in.bufferMemoryCeiling)); err != nil {
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

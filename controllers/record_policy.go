package controllers

// This file keeps a Record's NATS credentials where the cluster admin
// allows them to go (package natspolicy holds the rules). A refused Record
// is Stalled with a reason that says which rule and which server. Its
// Deployment is not created; an existing one (the Record was edited to
// point elsewhere) is left as it was, neither updated nor deleted: its
// pods hold the credentials for the last allowed server only, and keep
// serving consumers until the spec is fixed.

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/recbuf/recbuf/internal/natspolicy"
)

// NATSPolicy is the manager's word on where credentials may go.
func (c Config) NATSPolicy() natspolicy.Policy {
	return natspolicy.Policy{DefaultURL: c.NATSURL, Allowed: c.AllowedNATSServers, AllowPlaintext: c.AllowPlaintextNATSCredentials}
}

// reconcileDeploymentWithinPolicy reconciles the Deployment when the
// Record's NATS source is allowed; otherwise it only observes an existing
// Deployment of the Record's, for the status, and leaves it as it is.
func (r *RecordReconciler) reconcileDeploymentWithinPolicy(ctx context.Context, s *recordScope) error {
	s.natsRefusal = natspolicy.Check(s.record, r.Config.NATSPolicy())
	if !s.natsRefusal.Refused() && !adoptedStreamUnvetted(s.stream) {
		return r.reconcileDeployment(ctx, s)
	}
	d := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.record.Namespace, Name: s.record.ChildName()}, d); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading Deployment %s: %w", s.record.ChildName(), err)
	}
	if metav1.IsControlledBy(d, s.record) {
		s.deployment = d
	}
	return nil
}

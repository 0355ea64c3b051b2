package controllers

// This file gives the buffer pods of a Record with
// spec.consumers.authentication ServiceAccountToken what they need to check
// their consumers' tokens: an identity of their own, the ServiceAccount
// NAME-recbuf (owned by the Record), bound by the ClusterRoleBinding
// recbuf-buffer:NAMESPACE:NAME to the built-in ClusterRole
// system:auth-delegator, which allows creating TokenReviews and
// SubjectAccessReviews and nothing else (what kube-rbac-proxy is given).
// The pods then mount their ServiceAccount's token, which they use for
// these two reviews only. Records without it keep pods without any token.
//
// Reviews are cluster-scoped, so the binding must be a
// ClusterRoleBinding: a RoleBinding grants nothing on them. A
// cluster-scoped object cannot be owned by a namespaced Record, so the
// garbage collector cannot delete it: the manager does, when the Record is
// gone (or deleting) or no longer asks for authentication. It finds its
// bindings by label, and watches them, so a binding left behind while the
// manager was down is deleted when the manager starts (its Record is not
// found then). Between a Record's deletion and that reconcile, the binding
// names a ServiceAccount that the garbage collector deletes with the
// Record: it grants nothing to anyone unless a ServiceAccount of that name
// is made again in that namespace within that moment.
//
// No finalizer: it would need the manager to update Records, which it only
// reads.

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
)

// AuthDelegatorRole is the built-in ClusterRole the buffer pods of a
// Record with consumer authentication are bound to.
const AuthDelegatorRole = "system:auth-delegator"

// LabelRecordNamespace is the label of a Record's ClusterRoleBinding that
// holds the Record's namespace (its name is in LabelInstance): cluster-scoped, the binding
// has none of its own.
const LabelRecordNamespace = "recbuf.dev/record-namespace"

// bufferServiceAccountName is the ServiceAccount of the Record's buffer
// pods when they authenticate consumers: NAME-recbuf, as the other
// children.
func bufferServiceAccountName(rec *recbufv1alpha1.Record) string { return rec.ChildName() }

// authDelegatorBindingName is the name of the Record's ClusterRoleBinding:
// namespace and name cannot hold ':', so it is unique per Record.
func authDelegatorBindingName(key types.NamespacedName) string {
	return NameValue + ":" + key.Namespace + ":" + key.Name
}

// reconcileConsumerIdentity makes sure of the buffer pods' ServiceAccount
// and its binding when the Record authenticates consumers. It runs before
// the Deployment, whose pods need both to start serving.
func (r *RecordReconciler) reconcileConsumerIdentity(ctx context.Context, s *recordScope) error {
	if !bufferpod.ConsumerAuthentication(s.record) {
		return nil
	}
	refusal, err := r.consumerAuthenticationRefusal(ctx, s.record)
	s.consumerAuthOptInRead = r.Config.ConsumerAuthenticationOptIn
	if err != nil {
		s.childErrs[kindClusterRoleBinding] = err
		return err
	}
	if s.consumerAuthRefusal = refusal; refusal != "" {
		// An opt-in withdrawn takes the review rights away at once.
		if err := r.deleteAuthDelegatorBinding(ctx, client.ObjectKeyFromObject(s.record)); err != nil {
			s.childErrs[kindClusterRoleBinding] = err
			return err
		}
		return nil
	}
	sa := &corev1.ServiceAccount{ObjectMeta: childMeta(s.record)}
	_, err = r.reconcileChild(ctx, s, kindServiceAccount, sa, func() {
		sa.Labels = mergeLabels(sa.Labels, childLabels(s.record))
		// The pods ask for the token themselves (bufferpod.MutateContainer): no
		// other pod that runs as this account gets one by default.
		sa.AutomountServiceAccountToken = ptr.To(false)
	})
	if err != nil {
		return err
	}
	statusErr, err := r.ensureAuthDelegatorBinding(ctx, s)
	if statusErr != nil {
		s.childErrs[kindClusterRoleBinding] = statusErr
	}
	return err
}

// consumerAuthenticationRefusal says why the Record may not authenticate
// its consumers ("" when it may). The buffer pods' identity gets
// system:auth-delegator, cluster-wide TokenReview and SubjectAccessReview:
// whoever may run a pod as it in the namespace (the built-in edit role)
// can then tell whose any token is and ask what anyone may do. Where the
// manager requires it, the cluster admin grants that per Namespace.
func (r *RecordReconciler) consumerAuthenticationRefusal(ctx context.Context, rec *recbufv1alpha1.Record) (string, error) {
	if !r.Config.ConsumerAuthenticationOptIn {
		return "", nil
	}
	annotations, err := r.namespaceAnnotations(ctx, rec.Namespace)
	if err != nil {
		return "", err
	}
	key, allowed := recbufv1alpha1.AnnotationNamespaceConsumerAuthentication, recbufv1alpha1.ConsumerAuthenticationAllowed
	if annotations[key] == allowed {
		return "", nil
	}
	return fmt.Sprintf(
		"spec.consumers.authentication ServiceAccountToken needs the cluster admin's opt-in: Namespace %s has no annotation %s=%s "+
			"(the buffer pods' identity gets system:auth-delegator, cluster-wide token and access reviews, usable by whoever runs pods as it); "+
			"no buffer pod is created or updated", rec.Namespace, key, allowed), nil
}

// retireConsumerIdentity deletes the ServiceAccount and the binding of a
// Record that no longer authenticates consumers. It runs after the
// Deployment, so that the pods' template no longer names the account.
func (r *RecordReconciler) retireConsumerIdentity(ctx context.Context, s *recordScope) error {
	if bufferpod.ConsumerAuthentication(s.record) {
		return nil
	}
	if err := r.deleteChild(ctx, s, kindServiceAccount, &corev1.ServiceAccount{ObjectMeta: childMeta(s.record)}); err != nil {
		return err
	}
	if err := r.deleteAuthDelegatorBinding(ctx, client.ObjectKeyFromObject(s.record)); err != nil {
		s.childErrs[kindClusterRoleBinding] = err
		return err
	}
	return nil
}

// ensureAuthDelegatorBinding creates or updates the Record's
// ClusterRoleBinding. A binding of that name that is not the manager's is
// left alone and reported. statusErr and err are as reconcileChild's.
func (r *RecordReconciler) ensureAuthDelegatorBinding(ctx context.Context, s *recordScope) (statusErr, err error) {
	key := client.ObjectKeyFromObject(s.record)
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: authDelegatorBindingName(key)}}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(crb), crb); client.IgnoreNotFound(err) != nil {
		return err, fmt.Errorf("reading ClusterRoleBinding %s: %w", crb.Name, err)
	}
	if crb.UID != "" && !isOurBinding(crb, key) {
		err := fmt.Errorf("a ClusterRoleBinding named %s exists that recbuf does not manage", crb.Name)
		return err, err
	}
	want := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: AuthDelegatorRole}
	if crb.UID != "" && crb.RoleRef != want {
		// roleRef is immutable: a binding someone pointed elsewhere is
		// replaced.
		if err := r.Client.Delete(ctx, crb, client.Preconditions{UID: ptr.To(crb.UID)}); client.IgnoreNotFound(err) != nil {
			return err, fmt.Errorf("replacing ClusterRoleBinding %s: %w", crb.Name, err)
		}
		crb = &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: crb.Name}}
	}
	op, err := controllerutil.CreateOrUpdate(ctx, r.Client, crb, func() error {
		crb.Labels = mergeLabels(crb.Labels, bindingLabels(key))
		crb.RoleRef = want
		crb.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: key.Namespace, Name: bufferServiceAccountName(s.record)}}
		return nil
	})
	if err != nil {
		if apierrors.IsAlreadyExists(err) {
			// Just created, not in the cache yet: the next reconcile sees it.
			return nil, fmt.Errorf("reconciling ClusterRoleBinding %s: %w", crb.Name, errCacheLag)
		}
		return err, fmt.Errorf("reconciling ClusterRoleBinding %s: %w", crb.Name, err)
	}
	if op != controllerutil.OperationResultNone {
		s.log.Info("Child reconciled", "kind", "ClusterRoleBinding", "child", klog.KObj(crb), "operation", op)
	}
	return nil, nil
}

// deleteAuthDelegatorBinding deletes the ClusterRoleBinding of the Record
// key when the manager's cache holds it and it is the manager's.
func (r *RecordReconciler) deleteAuthDelegatorBinding(ctx context.Context, key types.NamespacedName) error {
	crb := &rbacv1.ClusterRoleBinding{}
	if err := r.Client.Get(ctx, types.NamespacedName{Name: authDelegatorBindingName(key)}, crb); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !isOurBinding(crb, key) {
		return nil
	}
	if err := r.Client.Delete(ctx, crb, client.Preconditions{UID: ptr.To(crb.UID)}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting ClusterRoleBinding %s: %w", crb.Name, err)
	}
	ctrl.LoggerFrom(ctx).Info("Child deleted", "kind", "ClusterRoleBinding", "child", klog.KObj(crb))
	return nil
}

// bindingLabels are the labels of the Record key's ClusterRoleBinding.
func bindingLabels(key types.NamespacedName) map[string]string {
	return map[string]string{
		LabelName: NameValue, LabelInstance: key.Name, LabelRecordNamespace: key.Namespace,
		LabelManagedBy: ManagedByValue,
	}
}

// isOurBinding reports whether crb is the manager's binding for the Record
// key.
func isOurBinding(crb *rbacv1.ClusterRoleBinding, key types.NamespacedName) bool {
	l := crb.Labels
	return l[LabelManagedBy] == ManagedByValue && l[LabelName] == NameValue &&
		l[LabelInstance] == key.Name && l[LabelRecordNamespace] == key.Namespace
}

// bindingRecord maps one of the manager's ClusterRoleBindings to its
// Record, so that a binding is deleted when its Record is gone, also when
// the Record went while the manager was down.
func bindingRecord(_ context.Context, obj client.Object) []reconcile.Request {
	l := obj.GetLabels()
	if l[LabelManagedBy] != ManagedByValue || l[LabelName] != NameValue || l[LabelInstance] == "" || l[LabelRecordNamespace] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: l[LabelRecordNamespace], Name: l[LabelInstance]}}}
}

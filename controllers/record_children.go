package controllers

// This file holds what every child of a Record shares: names, labels, and
// how a child is created, updated or deleted and its errors classified.
// The desired state of each kind is in record_settings.go (ConfigMap),
// record_deployment.go, record_service.go, record_disruption.go
// (PodDisruptionBudget) and record_networkpolicy.go.

import (
	"context"
	"errors"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// Labels on every child of a Record. The first two select the pods.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// NameValue is LabelName's value: what the children are.
	NameValue = "recbuf-buffer"
	// ManagedByValue is LabelManagedBy's value. The manager's cache holds
	// only Deployments, Services and Pods with this label (CacheOptions);
	// its report key Secrets carry it too, though it never reads them.
	ManagedByValue = "recbuf-manager"
)

// childMeta names a child of rec.
func childMeta(rec *recbufv1alpha1.Record) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: rec.ChildName(), Namespace: rec.Namespace}
}

// childKind is a kind of child, as the status names it.
type childKind string

// The children a Record may have. A new child is one more kind here, in
// children, and the phase that reconciles it.
const (
	kindConfigMap          childKind = "ConfigMap"
	kindDeployment         childKind = "Deployment"
	kindService            childKind = "Service"
	kindDisruptionBudget   childKind = "PodDisruptionBudget"
	kindNetworkPolicy      childKind = "NetworkPolicy"
	kindReportKeySecret    childKind = "Secret"
	kindServiceAccount     childKind = "ServiceAccount"
	kindClusterRoleBinding childKind = "ClusterRoleBinding"
)

// children is the order in which the children's errors are reported.
var children = []childKind{
	kindConfigMap, kindDeployment, kindService, kindDisruptionBudget,
	kindNetworkPolicy, kindReportKeySecret, kindServiceAccount, kindClusterRoleBinding,
}

// childErrors are the errors reconciling the children met, by kind, as
// the status reports them (none when the cache merely lags).
type childErrors map[childKind]error

// childErr is the error reconciling one kind of child met.
type childErr struct {
	kind childKind
	err  error
}

// inOrder are the errors met, in the order of children.
func (e childErrors) inOrder() []childErr {
	var out []childErr
	for _, k := range children {
		if err := e[k]; err != nil {
			out = append(out, childErr{k, err})
		}
	}
	return out
}

// reconcileChild creates or updates obj, the child of s.record of kind,
// with mutate, and records in s the error the status reports. observed
// says whether obj now holds the child as the API server returned it; err
// is what Reconcile returns.
func (r *RecordReconciler) reconcileChild(ctx context.Context, s *recordScope, kind childKind, obj client.Object, mutate func()) (observed bool, err error) {
	op, err := controllerutil.CreateOrUpdate(ctx, r.Client, obj, func() error {
		if err := controllerutil.SetControllerReference(s.record, obj, r.Scheme); err != nil {
			return err
		}
		mutate()
		return nil
	})
	observed = obj.GetUID() != "" && !isConflict(err)
	if err != nil {
		if err = r.childError(ctx, s.record, obj, err); !errors.Is(err, errCacheLag) {
			s.childErrs[kind] = err
		}
		return observed, fmt.Errorf("reconciling %s %s: %w", kind, obj.GetName(), err)
	}
	if op != controllerutil.OperationResultNone {
		s.log.Info("Child reconciled", "kind", kind, "child", klog.KObj(obj), "operation", op)
	}
	return observed, nil
}

// deleteChild deletes obj, the child of s.record of kind, when the cache
// holds it and it is the Record's: a child the Record no longer needs (a
// PodDisruptionBudget once it runs one pod). An object of that name that
// is not the Record's is left alone. Errors are recorded and returned as
// reconcileChild's.
func (r *RecordReconciler) deleteChild(ctx context.Context, s *recordScope, kind childKind, obj client.Object) error {
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		s.childErrs[kind] = err
		return fmt.Errorf("reading %s %s: %w", kind, obj.GetName(), err)
	}
	if !metav1.IsControlledBy(obj, s.record) {
		return nil
	}
	// The precondition keeps a newer object of that name from being
	// deleted in its place.
	if err := r.Client.Delete(ctx, obj, client.Preconditions{UID: ptr.To(obj.GetUID())}); client.IgnoreNotFound(err) != nil {
		s.childErrs[kind] = err
		return fmt.Errorf("deleting %s %s: %w", kind, obj.GetName(), err)
	}
	s.log.Info("Child deleted", "kind", kind, "child", klog.KObj(obj))
	return nil
}

// isConflict reports whether err says the child's name is taken by an
// object that is not ours.
func isConflict(err error) bool {
	var owned *controllerutil.AlreadyOwnedError
	return errors.As(err, &owned)
}

// selectorLabels select a Record's pods.
func selectorLabels(rec *recbufv1alpha1.Record) map[string]string {
	return map[string]string{LabelName: NameValue, LabelInstance: rec.Name}
}

// childLabels are on every child and pod.
func childLabels(rec *recbufv1alpha1.Record) map[string]string {
	l := selectorLabels(rec)
	l[LabelManagedBy] = ManagedByValue
	return l
}

// mergeLabels sets ours in have, keeping labels others added.
func mergeLabels(have, ours map[string]string) map[string]string {
	if have == nil {
		have = map[string]string{}
	}
	for k, v := range ours {
		have[k] = v
	}
	return have
}

// errCacheLag marks a create refused because the child exists and is ours:
// the cache has not seen it (yet). It is retried, and is no conflict.
var errCacheLag = errors.New("child exists but is not in the cache yet")

// childError classifies err, returned by CreateOrUpdate for obj.
func (r *RecordReconciler) childError(ctx context.Context, rec *recbufv1alpha1.Record, obj client.Object, err error) error {
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	live, ok := obj.DeepCopyObject().(client.Object)
	if !ok {
		return err
	}
	if getErr := reader.Get(ctx, client.ObjectKeyFromObject(obj), live); getErr != nil || !metav1.IsControlledBy(live, rec) {
		return err
	}
	// Ours, but invisible to the cache: just created, or someone removed
	// the label the cache selects on. Restore the labels; the next
	// reconcile sees the child again and reverts the rest.
	want := mergeLabels(maps.Clone(live.GetLabels()), childLabels(rec))
	if !maps.Equal(want, live.GetLabels()) {
		live.SetLabels(want)
		if err := r.Client.Update(ctx, live); err != nil {
			return fmt.Errorf("restoring the labels of %s: %w", live.GetName(), err)
		}
	}
	return errCacheLag
}

// SidecarPodsCacheOptions are those of the cache of RecordReconciler's
// SidecarPods: the pods that asked for sidecars, and nothing else.
func SidecarPodsCacheOptions(scheme *runtime.Scheme) cache.Options {
	return cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}: {Label: labels.SelectorFromSet(labels.Set{recbufv1alpha1.LabelInject: "true"})},
	}}
}

// CacheOptions restricts the manager's cache of Deployments, Services,
// ConfigMaps, PodDisruptionBudgets, NetworkPolicies, Pods, ServiceAccounts
// and ClusterRoleBindings to the ones the manager
// manages, so that it does not hold every such object of the cluster in
// memory. Secrets are not cached at all: the manager only creates them
// (record_reportkey.go). The app pods with sidecars, which are not the
// manager's, are in a cache of their own (SidecarPodsCacheOptions).
func CacheOptions() cache.Options {
	managed := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedByValue})
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&appsv1.Deployment{}:            {Label: managed},
		&corev1.Service{}:               {Label: managed},
		&corev1.ConfigMap{}:             {Label: managed},
		&policyv1.PodDisruptionBudget{}: {Label: managed},
		&networkingv1.NetworkPolicy{}:   {Label: managed},
		&corev1.Pod{}:                   {Label: managed},
		&corev1.ServiceAccount{}:        {Label: managed},
		&rbacv1.ClusterRoleBinding{}:    {Label: managed},
	}}
}

// namespaceAnnotations are the annotations a cluster admin set on the
// Namespace. It reads around the cache: a get when a stream is made or
// grows, or a Record asks for consumer authentication, costs less than a
// cache of every Namespace, and needs get alone.
func (r *RecordReconciler) namespaceAnnotations(ctx context.Context, namespace string) (map[string]string, error) {
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := reader.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return nil, fmt.Errorf("reading Namespace %s: %w", namespace, err)
	}
	return ns.Annotations, nil
}

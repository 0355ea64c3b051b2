package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/statusagg"
)

// Labels on every child of a Record. The first two select the pods.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// NameValue is LabelName's value: what the children are.
	NameValue = "recbuf-buffer"
	// ManagedByValue is LabelManagedBy's value. The manager's cache holds
	// only Deployments and Services with this label (CacheOptions).
	ManagedByValue = "recbuf-manager"
)

// Config is the manager-wide configuration the reconciler builds the
// children from (the manager's flags).
type Config struct {
	// SidecarImage and SidecarImagePullPolicy run the buffer process.
	SidecarImage           string
	SidecarImagePullPolicy corev1.PullPolicy
	// NATSURL is the server of Records that name none.
	NATSURL string
	// ReportSubjectPrefix is the subject prefix buffer processes report on.
	ReportSubjectPrefix string
	// ReportInterval is how often buffer processes report.
	ReportInterval time.Duration
	// StaleAfter is how long after the last report a Record is stale.
	StaleAfter time.Duration
}

// Reports is what the reconciler reads of the status collector
// (*statusagg.Collector).
type Reports interface {
	Aggregate(record types.NamespacedName, uid types.UID) statusagg.Aggregate
	State() statusagg.State
	Changes() <-chan statusagg.Change
}

// RecordReconciler reconciles Records into a Deployment and a Service each,
// and writes their status. Create it with all fields set; it is then safe
// for the concurrent use controller-runtime makes of it.
type RecordReconciler struct {
	Client client.Client
	// APIReader reads around the cache (mgr.GetAPIReader()), to tell our
	// own just-created child from someone else's; Client when nil.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Reports   Reports
	Config    Config

	// now is the clock (time.Now when nil).
	now func() time.Time
}

// The manager's permissions, least privilege: Records are only read (their
// status patched); children are created and updated but never deleted (the
// garbage collector does that through the owner references); Secrets are
// not read at all (the kubelet mounts them). records/finalizers: the
// children's owner references block the owner's deletion, which the
// OwnerReferencesPermissionEnforcement admission plugin allows only to
// those who may update the owner's finalizers.
//
// +kubebuilder:rbac:groups=recbuf.dev,resources=records,verbs=get;list;watch
// +kubebuilder:rbac:groups=recbuf.dev,resources=records/status,verbs=patch
// +kubebuilder:rbac:groups=recbuf.dev,resources=records/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// recordScope is what one pass of Reconcile knows. The phases fill in the
// children they observed and the errors they met; the deferred status
// phase reads them. A scope lives for one Reconcile call, in one goroutine.
type recordScope struct {
	log logr.Logger
	// record is the Record being reconciled; only its status is changed.
	record *recbufv1alpha1.Record
	// before is the Record as read, to patch the status against.
	before *recbufv1alpha1.Record

	// deployment and service are the children as the API server last
	// returned them (nil: absent or not ours).
	deployment *appsv1.Deployment
	service    *corev1.Service
	// deploymentErr and serviceErr are the errors reconciling them met.
	deploymentErr, serviceErr error
}

// Reconcile brings one Record's children to their desired state and
// writes its status. It reads as the list of its phases.
func (r *RecordReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, reterr error) {
	rec := &recbufv1alpha1.Record{}
	if err := r.Client.Get(ctx, req.NamespacedName, rec); err != nil {
		if apierrors.IsNotFound(err) {
			forgetReady(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !rec.DeletionTimestamp.IsZero() {
		// The garbage collector deletes the children.
		forgetReady(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	s := &recordScope{log: ctrl.LoggerFrom(ctx), record: rec, before: rec.DeepCopy()}

	defer func() {
		recheck, err := r.reconcileStatus(ctx, s)
		if err != nil {
			reterr = kerrors.NewAggregate([]error{reterr, err})
		}
		if reterr == nil {
			res = ctrl.Result{RequeueAfter: recheck}
		}
	}()

	phases := []func(context.Context, *recordScope) error{
		r.reconcileDeployment,
		r.reconcileService,
	}
	var errs []error
	for _, phase := range phases {
		if err := phase(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	return ctrl.Result{}, kerrors.NewAggregate(errs)
}

// reconcileStatus computes the status from the scope and the reports,
// patches it when it changed, emits Events for condition transitions, and
// returns when the status should be looked at again without any event
// (reports going stale).
func (r *RecordReconciler) reconcileStatus(ctx context.Context, s *recordScope) (time.Duration, error) {
	now := time.Now
	if r.now != nil {
		now = r.now
	}
	key := client.ObjectKeyFromObject(s.record)
	in := statusInputs{
		now:        now(),
		staleAfter: r.Config.StaleAfter,
		deployment: s.deployment, service: s.service,
		deploymentErr: s.deploymentErr, serviceErr: s.serviceErr,
		aggregate: r.Reports.Aggregate(key, s.record.UID),
		state:     r.Reports.State(),
	}
	computeStatus(s.record, in)
	observeReady(s.record)
	recheck := recheckAfter(s.record, in)

	if equality.Semantic.DeepEqual(s.before.Status, s.record.Status) {
		return recheck, nil
	}
	if err := r.Client.Status().Patch(ctx, s.record, client.MergeFrom(s.before)); err != nil {
		if apierrors.IsNotFound(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("patching status of Record %s: %w", key, err)
	}
	for _, t := range conditionTransitions(s.before.Status.Conditions, s.record.Status.Conditions) {
		r.Recorder.Eventf(s.record, nil, t.eventType, t.condition.Reason, t.condition.Type, "%s", t.condition.Message)
	}
	s.log.V(1).Info("Status updated", "record", klog.KObj(s.record))
	return recheck, nil
}

// SetupWithManager registers the reconciler with mgr: it watches Records,
// their Deployments and Services, and the collector's changes.
func (r *RecordReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return r.setupWithManager(mgr, r)
}

// setupWithManager lets tests wrap the reconciler to observe it.
func (r *RecordReconciler) setupWithManager(mgr ctrl.Manager, rec reconcile.Reconciler) error {
	if r.Reports == nil {
		return errors.New("RecordReconciler needs Reports")
	}
	return ctrl.NewControllerManagedBy(mgr).
		// Our own status patches change neither generation nor metadata:
		// they need no reconcile.
		For(&recbufv1alpha1.Record{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			predicate.AnnotationChangedPredicate{},
			predicate.LabelChangedPredicate{},
		))).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		WatchesRawSource(r.reportSource(mgr.GetClient())).
		Named("record").
		Complete(rec)
}

// reportSource enqueues the Records the collector says changed; a change of
// the collector's own connection enqueues every Record.
func (r *RecordReconciler) reportSource(c client.Reader) source.Source {
	return source.Func(func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		log := ctrl.LoggerFrom(ctx).WithName("reports")
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case ch := <-r.Reports.Changes():
					if !ch.All {
						q.Add(reconcile.Request{NamespacedName: ch.Record})
						continue
					}
					var list recbufv1alpha1.RecordList
					if err := c.List(ctx, &list); err != nil {
						log.Error(err, "Listing Records after a NATS connection change failed")
						continue
					}
					for i := range list.Items {
						q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
					}
				}
			}
		}()
		return nil
	})
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

// CacheOptions restricts the manager's cache of Deployments and Services to
// the ones the manager manages, so that it does not hold every Deployment
// and Service of the cluster in memory.
func CacheOptions() cache.Options {
	managed := labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedByValue})
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&appsv1.Deployment{}: {Label: managed},
		&corev1.Service{}:    {Label: managed},
	}}
}

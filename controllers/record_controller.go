package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go/jetstream"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
	"github.com/recbuf/recbuf/internal/natspolicy"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/statusagg"
)

// Config is the manager-wide configuration the reconciler builds the
// children from (the manager's flags).
type Config struct {
	// BufferImage and BufferImagePullPolicy run the buffer process, in the
	// Record's own pods and injected as a sidecar.
	BufferImage           string
	BufferImagePullPolicy corev1.PullPolicy
	// NATSURL is the server of Records that name none.
	NATSURL string
	// ReportSubjectPrefix is the subject prefix buffer processes report on.
	ReportSubjectPrefix string
	// ReportInterval is how often buffer processes report. A running pod
	// silent for longer than one and a half intervals is disconnected.
	// Both reach the pods through each Record's ConfigMap, not their pod
	// template: changing them restarts no pod.
	ReportInterval time.Duration
	// AllowedNATSServers are the NATS servers (URLs or host:port, each may
	// be a comma-separated list) a Record with a credentials Secret may
	// connect to; empty means NATSURL's (record_policy.go).
	AllowedNATSServers []string
	// AllowPlaintextNATSCredentials lets such a Record send its credentials
	// over plaintext nats:// or ws:// to a server other than NATSURL's.
	AllowPlaintextNATSCredentials bool
	// ReportMasterKey is the manager's master key (--report-master-key-file),
	// at least report.MinKeySize bytes: each Record's report key is derived
	// from it, and its fingerprint names the Records' report key Secrets
	// (record_reportkey.go).
	ReportMasterKey []byte
	// BufferMemoryCeiling is the largest memory limit, in bytes, that a
	// buffer container gets by default (<= 0: sizing.DefaultCeiling); a
	// Record's own spec.resources are not held to it.
	BufferMemoryCeiling int64
	// StreamMaxBytes is max_bytes of the stream of a durable SpmcRing
	// without a byte budget (<= 0: streams.DefaultRingMaxBytes); every
	// other stream the manager creates is bounded by what its buffer
	// holds (streamLimits).
	StreamMaxBytes int64
	// NamespaceStreamMaxBytes is the most the streams of one namespace's
	// durable Records may reserve together (0: no limit), unless the
	// Namespace's recbuf.dev/stream-max-bytes says otherwise
	// (record_streamquota.go).
	NamespaceStreamMaxBytes int64
	// ConsumerAuthenticationOptIn makes consumer authentication, which
	// binds the buffer pods' identity to system:auth-delegator, need the
	// cluster admin's opt-in per Namespace (record_consumerauth.go).
	ConsumerAuthenticationOptIn bool
	// NetworkPolicies says whether each Record gets a NetworkPolicy, and
	// whom it lets reach the metrics port (record_networkpolicy.go).
	NetworkPolicies NetworkPolicyConfig
}

// Reports is what the reconciler reads of the status collector
// (*statusagg.Collector).
type Reports interface {
	Aggregate(record types.NamespacedName, uid types.UID) statusagg.Aggregate
	State() statusagg.State
	Changes() <-chan event.TypedGenericEvent[statusagg.Change]
	// StaleAfter is how long a report counts after its receipt.
	StaleAfter() time.Duration
	// Admit makes the collector accept the Record's reports as id says:
	// signed with its key, carrying its UID, from its current pods.
	Admit(record types.NamespacedName, id statusagg.Identity)
	// Forget drops a Record that is gone, and its reports.
	Forget(record types.NamespacedName)
}

// RecordReconciler reconciles Records into a ConfigMap, a Deployment, a
// Service, above one replica a PodDisruptionBudget and, when enabled, a
// NetworkPolicy each, and writes their status. Create it with all fields
// set; it is then safe for the concurrent use controller-runtime makes of
// it.
type RecordReconciler struct {
	Client client.Client
	// APIReader reads around the cache (mgr.GetAPIReader()), to tell our
	// own just-created child from someone else's; Client when nil.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Reports   Reports
	Config    Config
	// JetStream manages the streams of Records with spec.persistence, on
	// the manager's NATS server (record_stream.go); nil: such Records'
	// StreamReady is Unknown (NATSUnavailable).
	JetStream jetstream.JetStream
	// SidecarPods, when set, is a cache of the app pods that asked for
	// sidecars (label LabelInject=true; SidecarPodsCacheOptions): the
	// manager's own pod cache holds its Deployments' pods only.
	SidecarPods cache.Cache

	// now is the clock (time.Now when nil).
	now func() time.Time
	// reportKeys remembers the report key Secrets made sure of.
	reportKeys reportKeySecrets
	// streamSamples remembers when each Record's status.stream was written.
	streamSamples streamSamples
}

// The manager's permissions, least privilege: Records are read, their
// status patched, and their metadata patched only to add and remove the
// finalizer that deletes a persistent Record's stream with it
// (record_stream.go); children are created and updated but not deleted (the
// garbage collector does that through the owner references), except a
// PodDisruptionBudget, deleted when its Record scales down to one replica,
// and a NetworkPolicy, deleted when the manager's NetworkPolicies are
// turned off (watched either way, so that turning them off cleans up).
// Secrets are only created, never read, listed, watched, updated or
// deleted: each Record's report key Secret is created once with a key the
// manager derives in memory from its master key, and the NATS credentials
// Secrets of Records are never read (the kubelet mounts both;
// record_reportkey.go says what create alone does and does not do).
// ConfigMaps are written for the report settings of each Record's pods
// (record_settings.go); list and watch let the manager revert edits of
// them, and RBAC cannot narrow them to the labelled ones the cache holds
// (CacheOptions). Pods are only listed and watched, those labelled as
// ours: a running buffer pod that stops reporting is how the manager tells
// that its NATS link is down. records/finalizers: the children's owner
// references block the owner's deletion, which the
// OwnerReferencesPermissionEnforcement admission plugin allows only to
// those who may update the owner's finalizers. A Record with consumer
// authentication gets a ServiceAccount (owned, deleted when authentication
// is switched off) and a ClusterRoleBinding of it to
// system:auth-delegator (record_consumerauth.go): the manager may bind that
// one ClusterRole only (bind, resourceNames), without holding its
// permissions, and deletes the bindings, which no garbage collector does.
// Namespaces are only read, one get when a durable Record's stream is to
// be created or grown, for their stream quota annotation
// (record_streamquota.go): no list or watch, so no cache of them.
//
// +kubebuilder:rbac:groups=recbuf.dev,resources=records,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=recbuf.dev,resources=records/status,verbs=patch
// +kubebuilder:rbac:groups=recbuf.dev,resources=records/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=create
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterrolebindings,verbs=get;list;watch;create;update;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles,verbs=bind,resourceNames=system:auth-delegator
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

	// settings, deployment and service are the children as the API server
	// last returned them (nil: absent or not ours).
	settings   *corev1.ConfigMap
	deployment *appsv1.Deployment
	service    *corev1.Service
	// childErrs are the errors reconciling the children met.
	childErrs childErrors
	// reportKey is the Record's report key, derived from the master key.
	reportKey []byte
	// natsRefusal says why the Record's NATS source is refused (zero: it
	// is not); the Deployment is then neither created nor updated.
	natsRefusal natspolicy.Refusal
	// consumerAuthRefusal says why the Record may not authenticate its
	// consumers in its namespace ("": it may, or does not ask to).
	consumerAuthRefusal string
	// consumerAuthOptInRead says whether the Namespace's opt-in was read:
	// no event says that it changed, so it is read again every report
	// interval.
	consumerAuthOptInRead bool
	// pods are the Record's buffer pods as the cache has them;
	// podsObserved says whether they could be listed.
	pods         []corev1.Pod
	podsObserved bool
	// stream is what the stream phase saw of a persistent Record's stream
	// (nil: the Record has no spec.persistence).
	stream *streamObservation
	// sidecarPods are those of pods that are app pods the Record's buffer
	// was injected into.
	sidecarPods []corev1.Pod
}

// Reconcile brings one Record's children to their desired state and
// writes its status. It reads as the list of its phases.
func (r *RecordReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, reterr error) {
	rec := &recbufv1alpha1.Record{}
	if err := r.Client.Get(ctx, req.NamespacedName, rec); err != nil {
		if apierrors.IsNotFound(err) {
			r.forgetRecord(req.NamespacedName)
			return ctrl.Result{}, r.deleteAuthDelegatorBinding(ctx, req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	s := &recordScope{log: ctrl.LoggerFrom(ctx), record: rec, before: rec.DeepCopy(), childErrs: childErrors{}}
	if !rec.DeletionTimestamp.IsZero() {
		// The garbage collector deletes the children; the manager the ones
		// it cannot: the cluster-scoped binding (record_consumerauth.go) and
		// the stream in NATS (record_stream.go).
		r.forgetRecord(req.NamespacedName)
		var errs []error
		if controllerutil.ContainsFinalizer(rec, StreamFinalizer) {
			errs = append(errs, r.finalizeStream(ctx, s))
		}
		errs = append(errs, r.deleteAuthDelegatorBinding(ctx, req.NamespacedName))
		return ctrl.Result{}, kerrors.NewAggregate(errs)
	}

	defer func() {
		recheck, err := r.reconcileStatus(ctx, s)
		if err != nil {
			reterr = kerrors.NewAggregate([]error{reterr, err})
		}
		if reterr == nil {
			res = ctrl.Result{RequeueAfter: recheck}
		}
	}()

	// The ConfigMap and the report key come before the Deployment, whose
	// pods mount them, and so does the NetworkPolicy, which isolates them;
	// the collector learns the pods once they are observed, before the
	// status reads its aggregate.
	phases := []func(context.Context, *recordScope) error{
		r.reconcileSettings,
		r.reconcileReportKey,
		r.reconcileStream,
		r.reconcileNetworkPolicy,
		r.reconcileConsumerIdentity,
		r.reconcileDeployment,
		r.retireConsumerIdentity,
		r.reconcileService,
		r.reconcileDisruptionBudget,
		r.observePods,
		r.admitReports,
	}
	var errs []error
	for _, phase := range phases {
		if err := phase(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	return ctrl.Result{}, kerrors.NewAggregate(errs)
}

// SetupWithManager registers the reconciler with mgr: it watches Records,
// their children and pods, and the collector's changes; never Secrets.
func (r *RecordReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return r.setupWithManager(mgr, r)
}

// setupWithManager lets tests wrap the reconciler to observe it.
func (r *RecordReconciler) setupWithManager(mgr ctrl.Manager, rec reconcile.Reconciler) error {
	if r.Reports == nil {
		return errors.New("RecordReconciler needs Reports")
	}
	if len(r.Config.ReportMasterKey) < report.MinKeySize {
		return fmt.Errorf("RecordReconciler needs a Config.ReportMasterKey of at least %d bytes", report.MinKeySize)
	}
	b := ctrl.NewControllerManagedBy(mgr)
	if r.SidecarPods != nil {
		// An app pod's sidecars are the Records its annotation names.
		b = b.WatchesRawSource(source.Kind(r.SidecarPods, &corev1.Pod{},
			handler.TypedEnqueueRequestsFromMapFunc(sidecarRecords)))
	}
	return b.
		// Our own status patches change neither generation nor metadata:
		// they need no reconcile.
		For(&recbufv1alpha1.Record{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			predicate.AnnotationChangedPredicate{},
			predicate.LabelChangedPredicate{},
		))).
		Owns(&corev1.ConfigMap{}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(&corev1.ServiceAccount{}).
		// Cluster-scoped, the bindings cannot be owned: mapped by label.
		Watches(&rbacv1.ClusterRoleBinding{}, handler.EnqueueRequestsFromMapFunc(bindingRecord)).
		// Pods are owned by the Deployment's ReplicaSets: mapped by label.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podRecord)).
		WatchesRawSource(source.Channel(r.Reports.Changes(),
			handler.TypedEnqueueRequestsFromMapFunc(reportRequests(mgr.GetClient())))).
		Named("record").
		Complete(rec)
}

// sidecarRecords maps an app pod to the Records injected into it.
func sidecarRecords(_ context.Context, pod *corev1.Pod) []reconcile.Request {
	var reqs []reconcile.Request
	for name := range bufferpod.InjectedGenerations(pod) {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: pod.Namespace, Name: name}})
	}
	return reqs
}

// clock reads the reconciler's clock.
func (r *RecordReconciler) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// reportRequests maps a change of the collector to the Records it
// concerns: the one named, or every Record when the collector's own
// connection changed (what every Record can know changed then).
func reportRequests(c client.Reader) handler.TypedMapFunc[statusagg.Change, reconcile.Request] {
	return func(ctx context.Context, ch statusagg.Change) []reconcile.Request {
		if !ch.All {
			return []reconcile.Request{{NamespacedName: ch.Record}}
		}
		var list recbufv1alpha1.RecordList
		if err := c.List(ctx, &list); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing Records after a NATS connection change failed")
			return nil
		}
		reqs := make([]reconcile.Request, len(list.Items))
		for i := range list.Items {
			reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
		}
		return reqs
	}
}

// podRecord maps a buffer pod to its Record, found by the labels the
// manager put on the pod template; other pods map to nothing.
func podRecord(_ context.Context, pod client.Object) []reconcile.Request {
	l := pod.GetLabels()
	if l[LabelName] != NameValue || l[LabelInstance] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: pod.GetNamespace(), Name: l[LabelInstance]}}}
}

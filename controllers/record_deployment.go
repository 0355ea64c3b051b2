package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
	"github.com/recbuf/recbuf/internal/natspolicy"
	"github.com/recbuf/recbuf/internal/report"
)

// reconcileDeployment creates or updates the Record's Deployment, unless a
// gate holds its rollout (rolloutHeld): then it only observes an existing
// Deployment of the Record's, for the status, and leaves it as it is. Only
// the fields recbuf sets are written, so the API server's defaults stay and
// an unchanged Deployment is not updated; any edit of those fields by
// someone else is reverted.
func (r *RecordReconciler) reconcileDeployment(ctx context.Context, s *recordScope) error {
	s.natsRefusal = natspolicy.Check(s.record, r.Config.NATSPolicy())
	switch {
	case adoptedStreamRefused(s.stream):
		return r.stopDeployment(ctx, s)
	case r.rolloutHeld(s):
		return r.observeDeployment(ctx, s)
	}
	d := &appsv1.Deployment{ObjectMeta: childMeta(s.record)}
	observed, err := r.reconcileChild(ctx, s, kindDeployment, d, func() { mutateDeployment(d, s.record, r.Config) })
	if observed {
		s.deployment = d
	}
	return err
}

// rolloutHeld says whether the Record's pods are to stay as they are: the
// gates that hold a rollout, each also a reason of the Stalled condition.
// Pods already running keep serving consumers until the spec is fixed.
func (r *RecordReconciler) rolloutHeld(s *recordScope) bool {
	_, doesNotFit := bufferpod.Memory(s.record, r.Config.BufferPod())
	return s.natsRefusal.Refused() || // the credentials would go where the admin does not allow (record_policy.go)
		s.consumerAuthRefusal != "" || // pods that would check tokens without the admin's opt-in (record_consumerauth.go)
		adoptedStreamUnvetted(s.stream) || // no new pod waits for a stream the manager has not checked (record_stream.go)
		doesNotFit != nil // pods that cannot hold what the Record declares (record_memory.go)
}

// stopDeployment scales the Record's Deployment, if it has one, to zero
// without changing anything else: its pods read a stream that a later
// check refused (adoptedStreamRefused). The next pass that accepts the
// stream rolls them out again, at spec.replicas.
func (r *RecordReconciler) stopDeployment(ctx context.Context, s *recordScope) error {
	if err := r.observeDeployment(ctx, s); err != nil || s.deployment == nil || ptr.Deref(s.deployment.Spec.Replicas, 1) == 0 {
		return err
	}
	// An update, not a patch: the manager's role has no patch on
	// Deployments, and a conflict is retried like any other.
	s.deployment.Spec.Replicas = ptr.To[int32](0)
	if err := r.Client.Update(ctx, s.deployment); err != nil {
		s.childErrs[kindDeployment] = err
		return fmt.Errorf("scaling Deployment %s to 0: %w", s.deployment.Name, err)
	}
	s.log.Info("Buffer pods stopped: the adopted stream is refused", "child", klog.KObj(s.deployment))
	return nil
}

// observeDeployment reads the Record's Deployment without changing it, so
// that the status still describes the pods that run.
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

// mutateDeployment sets the fields recbuf owns on d, which is either new or
// as read from the API server. Each field is set whole, so drift inside it
// is reverted; the buffer container is updated in place so that the
// defaults the API server filled in (terminationMessagePath…) stay equal.
func mutateDeployment(d *appsv1.Deployment, rec *recbufv1alpha1.Record, cfg Config) {
	d.Labels = mergeLabels(d.Labels, childLabels(rec))
	if d.CreationTimestamp.IsZero() {
		// The selector is immutable: set once.
		d.Spec.Selector = &metav1.LabelSelector{MatchLabels: selectorLabels(rec)}
	}
	d.Spec.Replicas = ptr.To(ptr.Deref(rec.Spec.Replicas, 1))
	if rec.Spec.Buffer.Type == recbufv1alpha1.BufferTypeMailbox && !rec.Persistent() {
		// Two mailboxes side by side during a rolling update would each take
		// the same values: a value could be taken twice. Stop the old first.
		// A persistent Mailbox is one in JetStream, whose take only one
		// replica can make (a DeleteMsg of the value's sequence).
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	} else {
		// Start the new pod before stopping the old, so that the record
		// stays served through a rollout.
		d.Spec.Strategy = appsv1.DeploymentStrategy{
			Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)),
				MaxSurge:       ptr.To(intstr.FromInt32(1)),
			},
		}
	}

	t := &d.Spec.Template
	t.Labels = mergeLabels(t.Labels, childLabels(rec))
	ps := &t.Spec
	var c corev1.Container
	for _, have := range ps.Containers {
		if have.Name == bufferpod.ContainerName {
			c = have
		}
	}
	own, bp := bufferpod.Own(rec), cfg.BufferPod()
	bufferpod.MutateContainer(&c, rec, bp, own)
	ps.Containers = []corev1.Container{c}
	ps.InitContainers = nil
	ps.Volumes = bufferpod.Volumes(rec, bp, own)
	ps.SecurityContext = bufferpod.PodSecurityContext()
	// The buffer process talks to the API server only to check its
	// consumers' tokens, as its own ServiceAccount
	// (record_consumerauth.go); otherwise it has no token at all. Both
	// fields of the account's name are set: the API server reads the
	// deprecated one when the other is empty, so clearing one alone would
	// keep the account.
	ps.ServiceAccountName, ps.DeprecatedServiceAccount = "", ""
	ps.AutomountServiceAccountToken = ptr.To(false)
	if bufferpod.ConsumerAuthentication(rec) {
		ps.ServiceAccountName = bufferServiceAccountName(rec)
		ps.DeprecatedServiceAccount = ps.ServiceAccountName
		ps.AutomountServiceAccountToken = ptr.To(true)
	}
	ps.EnableServiceLinks = ptr.To(false)
	ps.TerminationGracePeriodSeconds = ptr.To[int64](bufferpod.ShutdownGraceSeconds + 5)
	ps.NodeSelector, ps.Tolerations, ps.Affinity = nil, nil, nil
	ps.TopologySpreadConstraints = defaultSpread(rec)
	if sc := rec.Spec.Scheduling; sc != nil {
		ps.NodeSelector = sc.NodeSelector
		ps.Tolerations = sc.Tolerations
		ps.Affinity = sc.Affinity
		if len(sc.TopologySpreadConstraints) > 0 {
			ps.TopologySpreadConstraints = sc.TopologySpreadConstraints
		}
	}
}

// defaultSpread spreads a Record's pods across nodes, whatever its
// replicas: set for one replica too, so that scaling up changes no pod
// template and rolls nothing. Soft (ScheduleAnyway): a pod that cannot be
// placed on a node of its own still runs, on a cluster of one node as on a
// node drained for maintenance. pod-template-hash counts only the pods of
// the current revision, so a rollout's surge pod is not pushed away by the
// old pods it is replacing.
func defaultSpread(rec *recbufv1alpha1.Record) []corev1.TopologySpreadConstraint {
	return []corev1.TopologySpreadConstraint{{
		MaxSkew:           1,
		TopologyKey:       corev1.LabelHostname,
		WhenUnsatisfiable: corev1.ScheduleAnyway,
		LabelSelector:     &metav1.LabelSelector{MatchLabels: selectorLabels(rec)},
		MatchLabelKeys:    []string{appsv1.DefaultDeploymentUniqueLabelKey},
	}}
}

// BufferPod is what the manager sets for every buffer container.
func (c Config) BufferPod() bufferpod.Config {
	return bufferpod.Config{
		Image:                c.BufferImage,
		ImagePullPolicy:      c.BufferImagePullPolicy,
		NATSURL:              c.NATSURL,
		MemoryCeiling:        c.BufferMemoryCeiling,
		ReportKeyFingerprint: report.MasterKeyFingerprint(c.ReportMasterKey),
	}
}

package controllers

import (
	"context"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
)

// reconcileService creates or updates the Record's Service: the consumer
// API and the metrics of its buffer pods, under a stable name.
func (r *RecordReconciler) reconcileService(ctx context.Context, s *recordScope) error {
	svc := &corev1.Service{ObjectMeta: childMeta(s.record)}
	observed, err := r.reconcileChild(ctx, s, kindService, svc, func() { mutateService(svc, s.record) })
	if observed {
		s.service = svc
	}
	return err
}

// mutateService sets the fields recbuf owns on svc, leaving the ones the
// API server allocates (cluster IP, IP families) as they are.
func mutateService(svc *corev1.Service, rec *recbufv1alpha1.Record) {
	svc.Labels = mergeLabels(svc.Labels, childLabels(rec))
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	svc.Spec.Selector = selectorLabels(rec)
	svc.Spec.Ports = []corev1.ServicePort{
		{Name: "http", Port: bufferpod.HTTPPort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
		{Name: "metrics", Port: bufferpod.MetricsPort, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP},
	}
	// Replicas number their values independently: a consumer that
	// reconnects to resume by sequence must reach the same replica.
	svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
}

// endpoint is the consumer API URL of rec, served by its Service.
func endpoint(rec *recbufv1alpha1.Record) string {
	return "http://" + rec.ChildName() + "." + rec.Namespace + ".svc:" + strconv.Itoa(bufferpod.HTTPPort) + "/v1/records/" + rec.Name
}

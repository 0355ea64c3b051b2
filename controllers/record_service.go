package controllers

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// reconcileService creates or updates the Record's Service: the consumer
// API and the metrics of its buffer pods, under a stable name.
func (r *RecordReconciler) reconcileService(ctx context.Context, s *recordScope) error {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: s.record.ChildName(), Namespace: s.record.Namespace}}
	op, err := controllerutil.CreateOrUpdate(ctx, r.Client, svc, func() error {
		if err := controllerutil.SetControllerReference(s.record, svc, r.Scheme); err != nil {
			return err
		}
		mutateService(svc, s.record)
		return nil
	})
	if svc.UID != "" && !isConflict(err) {
		s.service = svc
	}
	if err != nil {
		if err = r.childError(ctx, s.record, svc, err); !errors.Is(err, errCacheLag) {
			s.serviceErr = err
		}
		return fmt.Errorf("reconciling Service %s: %w", svc.Name, err)
	}
	if op != controllerutil.OperationResultNone {
		s.log.Info("Service reconciled", "service", klog.KObj(svc), "operation", op)
	}
	return nil
}

// mutateService sets the fields recbuf owns on svc, leaving the ones the
// API server allocates (cluster IP, IP families) as they are.
func mutateService(svc *corev1.Service, rec *recbufv1alpha1.Record) {
	svc.Labels = mergeLabels(svc.Labels, childLabels(rec))
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	svc.Spec.Selector = selectorLabels(rec)
	svc.Spec.Ports = []corev1.ServicePort{
		{Name: "http", Port: HTTPPort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
		{Name: "metrics", Port: MetricsPort, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP},
	}
	// Replicas number their values independently: a consumer that
	// reconnects to resume by sequence must reach the same replica.
	svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
}

// endpoint is the consumer API URL of rec, served by its Service.
func endpoint(rec *recbufv1alpha1.Record) string {
	return "http://" + rec.ChildName() + "." + rec.Namespace + ".svc:" + strconv.Itoa(HTTPPort) + "/v1/records/" + rec.Name
}

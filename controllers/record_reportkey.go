package controllers

// This file keeps each Record's report key: a random key in a Secret the
// Record owns, mounted into its buffer pods only, with which they sign
// their counter reports (package report). The reconciler hands the key, the
// Record's UID and its current pods to the collector (Reports.Admit), which
// accepts only reports signed with it, from those pods. So a NATS client
// without the key cannot change any Record's status, even on a NATS
// without authentication.
//
// The privilege this costs the manager, which read no Secret before:
//
//   - RBAC on secrets, cluster-wide, verbs get, list, watch, create and
//     update. list/watch feed the cache; create makes the key; get reads
//     around the cache when the name is taken; update restores the labels
//     of a key Secret that lost them, or a key someone emptied. No delete:
//     the garbage collector deletes the Secret with its Record.
//   - The cache holds only Secrets labelled
//     app.kubernetes.io/managed-by=recbuf-manager (CacheOptions), so the
//     manager holds no other Secret in memory, and its watch transfers no
//     other. RBAC cannot be scoped by label, though: the manager's
//     ServiceAccount may read every Secret in the cluster, and a stolen
//     manager token can. Who can read a Record's key Secret (its
//     namespace's admins, by the built-in roles) can sign reports for that
//     Record, and only that Record.

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/statusagg"
)

// ReportKeyDir is where the report key Secret is mounted in the buffer
// pods; the key is the file report.KeyFile in it.
const ReportKeyDir = "/etc/recbuf/report-key"

const reportKeyVolume = "report-key"

// reportKeySecretName is the name of rec's report key Secret.
func reportKeySecretName(rec *recbufv1alpha1.Record) string {
	return rec.ChildName() + "-report-key"
}

// reconcileReportKey creates rec's report key Secret when it is missing,
// and keeps it labelled and holding a key. An existing key is never
// replaced: the running pods sign with it.
func (r *RecordReconciler) reconcileReportKey(ctx context.Context, s *recordScope) error {
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: reportKeySecretName(s.record), Namespace: s.record.Namespace}}
	var genErr error
	observed, statusErr, err := r.reconcileChild(ctx, s, "Secret", sec, func() {
		sec.Labels = mergeLabels(sec.Labels, childLabels(s.record))
		sec.Type = corev1.SecretTypeOpaque
		if len(bytes.TrimSpace(sec.Data[report.KeyFile])) >= report.MinKeySize {
			return
		}
		key := make([]byte, report.KeySize)
		if _, genErr = rand.Read(key); genErr != nil {
			return
		}
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		sec.Data[report.KeyFile] = key
	})
	if genErr != nil {
		return fmt.Errorf("generating the report key of Record %s: %w", client.ObjectKeyFromObject(s.record), genErr)
	}
	s.reportKeyErr = statusErr
	if observed && err == nil {
		s.reportKey = sec.Data[report.KeyFile]
	}
	return err
}

// admitReports tells the collector the Record's identity: its UID, its
// report key and its current pods, whose reports alone count. Without a
// key or a pod list this pass, the previous admission stands.
func (r *RecordReconciler) admitReports(_ context.Context, s *recordScope) error {
	if s.reportKey == nil || !s.podsObserved {
		return nil
	}
	pods := make([]string, len(s.pods))
	for i := range s.pods {
		pods[i] = s.pods[i].Name
	}
	r.Reports.Admit(client.ObjectKeyFromObject(s.record), statusagg.Identity{UID: s.record.UID, Key: s.reportKey, Pods: pods})
	return nil
}

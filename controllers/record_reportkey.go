package controllers

// This file keeps each Record's report key: a key derived from the
// manager's master key and the Record's identity (report.DeriveKey), put
// once into a Secret the Record owns and mounted into its buffer pods only,
// with which they sign their counter reports (package report). The
// reconciler hands the key, the Record's UID and its current pods to the
// collector (Reports.Admit), which accepts only reports signed with it,
// from those pods. So a NATS client without the key cannot change any
// Record's status, even on a NATS without authentication.
//
// The privilege this costs the manager: RBAC on secrets, cluster-wide,
// verb create only. The manager never reads a Secret: it computes each
// Record's key in memory, for the collector and for the one create of its
// Secret. No get, list or watch (so no Secret of the cluster, its own
// included, is in its cache or readable with its token), no update or
// patch (an existing Secret is never changed), no delete (the garbage
// collector deletes the Secret with its Record).
//
// What create alone does not do:
//
//   - A Secret that exists under the name is left as it is (AlreadyExists):
//     the manager cannot read it and does not need to. If someone else
//     made it first, or changed it (the manager creates it immutable, so
//     changing means deleting and creating), its Record's pods sign with a
//     wrong key and their reports are refused (bad_signature): the pods
//     look silent and the Record not connected, nothing else. Who can write
//     Secrets in a namespace can break that namespace's Records anyway.
//   - Without a watch the manager does not see its Secret deleted. It
//     creates it again at most reportKeyRecheck later (sooner for a young
//     Record, whose name may still be held by its predecessor's Secret
//     waiting for the garbage collector); running pods keep the key the
//     kubelet mounted, new pods wait for the Secret.
//   - Rotation: the Secret's name carries the master key's fingerprint
//     (report.MasterKeyFingerprint), so a new master key gives new
//     Secrets and a new volume in the pod template, that is a rolling
//     restart of every buffer pod onto its new key. The old Secrets, of no
//     use under the new master key, stay until their Record is deleted:
//     removing them would take the delete verb.

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/statusagg"
)

// reportKeyRecheck is how long the manager trusts that a Record's report
// key Secret exists after it created it or found the name taken, before it
// tries the create again (it cannot watch Secrets). reportKeyRecheckYoung
// is that time for a Record younger than reportKeyRecheck that found the
// name taken: the Secret may be its predecessor's, about to be deleted.
const (
	reportKeyRecheck      = 10 * time.Minute
	reportKeyRecheckYoung = 30 * time.Second
)

// reportKeySecretName is the name of rec's report key Secret under the
// master key cfg.ReportMasterKey (bufferpod.ReportKeySecretName).
func reportKeySecretName(rec *recbufv1alpha1.Record, cfg Config) string {
	return bufferpod.ReportKeySecretName(rec, report.MasterKeyFingerprint(cfg.ReportMasterKey))
}

// derivedReportKey is rec's report key under cfg.ReportMasterKey.
func derivedReportKey(rec *recbufv1alpha1.Record, cfg Config) []byte {
	return report.DeriveKey(cfg.ReportMasterKey, rec.Namespace, rec.Name, string(rec.UID))
}

// reconcileReportKey derives rec's report key and creates its Secret when
// the manager has not made sure of it lately. Create is the only call: an
// existing Secret, whoever made it, is left alone (see the file comment).
func (r *RecordReconciler) reconcileReportKey(ctx context.Context, s *recordScope) error {
	rec := s.record
	s.reportKey = derivedReportKey(rec, r.Config)
	name := reportKeySecretName(rec, r.Config)
	now := r.clock()
	if r.reportKeys.known(client.ObjectKeyFromObject(rec), rec.UID, name, now) {
		return nil
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: rec.Namespace, Labels: childLabels(rec)},
		Type:       corev1.SecretTypeOpaque,
		// Nobody needs to change it: a new key comes under a new name.
		Immutable: ptr.To(true),
		Data:      map[string][]byte{report.KeyFile: s.reportKey},
	}
	if err := controllerutil.SetControllerReference(rec, sec, r.Scheme); err != nil {
		return fmt.Errorf("reconciling Secret %s: %w", name, err)
	}
	err := r.Client.Create(ctx, sec)
	recheck := reportKeyRecheck
	switch {
	case err == nil:
		s.log.Info("Child reconciled", "kind", "Secret", "child", klog.KObj(sec), "operation", controllerutil.OperationResultCreated)
	case apierrors.IsAlreadyExists(err):
		if now.Sub(rec.CreationTimestamp.Time) < reportKeyRecheck {
			recheck = reportKeyRecheckYoung
		}
	default:
		s.childErrs[kindReportKeySecret] = err
		return fmt.Errorf("reconciling Secret %s: %w", name, err)
	}
	r.reportKeys.remember(client.ObjectKeyFromObject(rec), rec.UID, name, now.Add(recheck))
	return nil
}

// admitReports tells the collector the Record's identity: its UID, its
// report key and its current pods, whose reports alone count. Without a
// pod list this pass, the previous admission stands.
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

// forgetRecord drops what the reconciler keeps of a Record that is gone.
func (r *RecordReconciler) forgetRecord(key types.NamespacedName) {
	forgetMetrics(key)
	r.Reports.Forget(key)
	r.reportKeys.forget(key)
	r.streamSamples.forget(key)
}

// reportKeySecrets remembers, per Record, which report key Secret the
// manager made sure of and until when, so that it calls create once per
// Record and reportKeyRecheck, not once per reconcile. Its size is bounded
// by the live Records (forget). The zero value is ready to use.
type reportKeySecrets struct {
	mu sync.Mutex
	m  map[types.NamespacedName]reportKeySecret
}

type reportKeySecret struct {
	uid   types.UID
	name  string
	until time.Time
}

func (k *reportKeySecrets) known(rec types.NamespacedName, uid types.UID, name string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.m[rec]
	return ok && e.uid == uid && e.name == name && now.Before(e.until)
}

func (k *reportKeySecrets) remember(rec types.NamespacedName, uid types.UID, name string, until time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[types.NamespacedName]reportKeySecret{}
	}
	k.m[rec] = reportKeySecret{uid: uid, name: name, until: until}
}

func (k *reportKeySecrets) forget(rec types.NamespacedName) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, rec)
}

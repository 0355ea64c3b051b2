package controllers

// This file holds the Record's ConfigMap: the settings of its buffer
// processes that are the manager's, not the Record's — the report interval
// and subject prefix (the manager's --report-interval and
// --report-subject-prefix). They are kept out of the pod template so that
// changing them (a helm upgrade of the manager) restarts no buffer pod: the
// pods mount the ConfigMap, the kubelet updates the mounted file within
// about a minute, and the buffer process re-reads it and applies it
// without a restart (internal/sidecar, settings.go).

import (
	"context"
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/report"
)

const (
	// AnnotationSettingsChanged is the annotation of the Record's ConfigMap
	// that says when the manager last changed the settings in it (RFC
	// 3339). Until the change can have reached the pods
	// (settingsPropagation), a pod silent since then is not judged
	// disconnected (record_pods.go).
	AnnotationSettingsChanged = "recbuf.dev/settings-changed"
)

// reconcileSettings creates or updates the Record's ConfigMap.
func (r *RecordReconciler) reconcileSettings(ctx context.Context, s *recordScope) error {
	cm := &corev1.ConfigMap{ObjectMeta: childMeta(s.record)}
	now := r.clock()
	observed, err := r.reconcileChild(ctx, s, kindConfigMap, cm, func() { mutateSettings(cm, s.record, r.Config, now) })
	if observed {
		s.settings = cm
	}
	return err
}

// mutateSettings sets the fields recbuf owns on cm, new or as read. A
// change of an existing ConfigMap's settings is stamped with now.
func mutateSettings(cm *corev1.ConfigMap, rec *recbufv1alpha1.Record, cfg Config, now time.Time) {
	cm.Labels = mergeLabels(cm.Labels, childLabels(rec))
	data := settingsData(cfg)
	if !cm.CreationTimestamp.IsZero() && cm.Data[report.SettingsKey] != data {
		if cm.Annotations == nil {
			cm.Annotations = map[string]string{}
		}
		cm.Annotations[AnnotationSettingsChanged] = now.UTC().Format(time.RFC3339)
	}
	cm.Data = map[string]string{report.SettingsKey: data}
	cm.BinaryData = nil
	cm.Immutable = nil
}

// settingsData is the settings file's content for cfg.
func settingsData(cfg Config) string {
	// A string and a Duration: marshalling cannot fail.
	data, _ := json.Marshal(report.Settings{
		Interval:      report.Duration(cfg.ReportInterval),
		SubjectPrefix: cfg.ReportSubjectPrefix,
	})
	return string(data)
}

// settingsChanged is when the settings in cm last changed (zero: not since
// it was created, or cm is nil).
func settingsChanged(cm *corev1.ConfigMap) time.Time {
	if cm == nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, cm.Annotations[AnnotationSettingsChanged])
	if err != nil {
		return time.Time{}
	}
	return t
}

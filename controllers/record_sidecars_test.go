package controllers

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

func TestSetSidecars(t *testing.T) {
	app := func(name, gens string, phase corev1.PodPhase) corev1.Pod {
		return corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{AnnotationRecordGenerations: gens}},
			Status:     corev1.PodStatus{Phase: phase},
		}
	}
	deleting := app("leaving", "telemetry=3", corev1.PodRunning)
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	tests := []struct {
		name                string
		pods                []corev1.Pod
		wantCount, wantOld  int32
		wantStatus          metav1.ConditionStatus
		wantReason, wantMsg string
	}{
		{name: "no app pods means no condition at all"},
		{name: "pods admitted at the current generation are current",
			pods:      []corev1.Pod{app("a", "telemetry=3", corev1.PodRunning), app("b", "state=1,telemetry=3", corev1.PodPending)},
			wantCount: 2, wantStatus: metav1.ConditionTrue, wantReason: recbufv1alpha1.ReasonSidecarsCurrent},
		{name: "a pod admitted at an older generation is outdated, and counted",
			pods:      []corev1.Pod{app("a", "telemetry=3", corev1.PodRunning), app("b", "telemetry=2", corev1.PodRunning)},
			wantCount: 2, wantOld: 1, wantStatus: metav1.ConditionFalse, wantReason: recbufv1alpha1.ReasonOutdatedSidecars,
			wantMsg: "1 of 2 app pods with this Record's sidecar were admitted with an older spec"},
		{name: "finished and deleted pods do not count",
			pods: []corev1.Pod{app("done", "telemetry=1", corev1.PodSucceeded), app("failed", "telemetry=1", corev1.PodFailed), deleting}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecord("ns", "telemetry", ringSpec(8))
			rec.Generation = 3
			// A condition left from before goes when no pod is left.
			rec.Status.Conditions = []metav1.Condition{{Type: recbufv1alpha1.ConditionSidecarsCurrent, Status: metav1.ConditionTrue, Reason: "Old"}}
			setSidecars(rec, statusInputs{sidecarPods: tt.pods})
			if rec.Status.Sidecars != tt.wantCount || rec.Status.OutdatedSidecars != tt.wantOld {
				t.Errorf("got sidecars %d, outdated %d, want %d and %d", rec.Status.Sidecars, rec.Status.OutdatedSidecars, tt.wantCount, tt.wantOld)
			}
			c := meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionSidecarsCurrent)
			if tt.wantReason == "" {
				if c != nil {
					t.Errorf("got condition %+v, want none", c)
				}
				return
			}
			if c == nil || c.Status != tt.wantStatus || c.Reason != tt.wantReason || c.ObservedGeneration != 3 {
				t.Fatalf("got condition %+v, want %s/%s at generation 3", c, tt.wantStatus, tt.wantReason)
			}
			if tt.wantMsg != "" && !strings.HasPrefix(c.Message, tt.wantMsg) {
				t.Errorf("got message %q, want it to start %q", c.Message, tt.wantMsg)
			}
		})
	}
}

func TestAnAppPodMapsToTheRecordsInjectedIntoIt(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Annotations: map[string]string{AnnotationRecordGenerations: "telemetry=1,state=4"}}}
	var got []string
	for _, r := range sidecarRecords(t.Context(), pod) {
		got = append(got, r.String())
	}
	slices.Sort(got)
	if want := []string{"ns/state", "ns/telemetry"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

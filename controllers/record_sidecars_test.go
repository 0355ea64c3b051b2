package controllers

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

func TestSetSidecars(t *testing.T) {
	now := time.Date(2026, 12, 7, 16, 0, 0, 500_000_000, time.UTC)
	earlier := metav1.NewTime(now.Add(-time.Hour).Truncate(time.Second))
	app := func(name, gens string, phase corev1.PodPhase) corev1.Pod {
		return corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{recbufv1alpha1.AnnotationRecordGenerations: gens}},
			Status:     corev1.PodStatus{Phase: phase},
		}
	}
	deleting := app("leaving", "telemetry=3", corev1.PodRunning)
	deleting.DeletionTimestamp = &metav1.Time{Time: now}
	current := []corev1.Pod{app("a", "telemetry=3", corev1.PodRunning), app("b", "state=1,telemetry=3", corev1.PodPending)}
	// before is the condition a case starts from.
	wasCurrent := &metav1.Condition{Type: recbufv1alpha1.ConditionSidecarsCurrent, Status: metav1.ConditionTrue,
		Reason: recbufv1alpha1.ReasonSidecarsCurrent, ObservedGeneration: 2, LastTransitionTime: earlier}
	tests := []struct {
		name                string
		before              *metav1.Condition
		pods                []corev1.Pod
		wantCount, wantOld  int32
		wantStatus          metav1.ConditionStatus
		wantReason, wantMsg string
		wantTransition      metav1.Time
	}{
		{name: "no app pods means no condition at all"},
		{name: "a condition left from before goes when no pod is left", before: wasCurrent,
			pods: []corev1.Pod{app("done", "telemetry=1", corev1.PodSucceeded)}},
		{name: "pods admitted at the current generation are current, since now",
			pods: current, wantCount: 2, wantStatus: metav1.ConditionTrue, wantReason: recbufv1alpha1.ReasonSidecarsCurrent,
			wantMsg:        "2 app pods run this Record's buffer as a sidecar, all admitted at generation 3",
			wantTransition: metav1.NewTime(now.Truncate(time.Second))},
		{name: "a condition that stays True keeps its transition time and takes the new generation", before: wasCurrent,
			pods: current, wantCount: 2, wantStatus: metav1.ConditionTrue, wantReason: recbufv1alpha1.ReasonSidecarsCurrent,
			wantTransition: earlier},
		{name: "a pod admitted at an older generation is outdated, and counted, from now", before: wasCurrent,
			pods:      []corev1.Pod{app("a", "telemetry=3", corev1.PodRunning), app("b", "telemetry=2", corev1.PodRunning)},
			wantCount: 2, wantOld: 1, wantStatus: metav1.ConditionFalse, wantReason: recbufv1alpha1.ReasonOutdatedSidecars,
			wantMsg:        "1 of 2 app pods with this Record's sidecar were admitted with an older spec (before generation 3)",
			wantTransition: metav1.NewTime(now.Truncate(time.Second))},
		{name: "a pod whose annotation lacks this Record's generation counts as outdated",
			pods:      []corev1.Pod{app("a", "state=7", corev1.PodRunning)},
			wantCount: 1, wantOld: 1, wantStatus: metav1.ConditionFalse, wantReason: recbufv1alpha1.ReasonOutdatedSidecars,
			wantTransition: metav1.NewTime(now.Truncate(time.Second))},
		{name: "finished and deleted pods do not count",
			pods: []corev1.Pod{app("done", "telemetry=1", corev1.PodSucceeded), app("failed", "telemetry=1", corev1.PodFailed), deleting}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecord("ns", "telemetry", ringSpec(8))
			rec.Generation = 3
			if tt.before != nil {
				rec.Status.Conditions = []metav1.Condition{*tt.before}
			}
			setSidecars(rec, statusInputs{now: now, sidecarPods: tt.pods})
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
			if !c.LastTransitionTime.Equal(&tt.wantTransition) {
				t.Errorf("got transition time %v, want %v", c.LastTransitionTime, tt.wantTransition)
			}
			if tt.wantMsg != "" && !strings.HasPrefix(c.Message, tt.wantMsg) {
				t.Errorf("got message %q, want it to start %q", c.Message, tt.wantMsg)
			}
		})
	}
}

// TestSetSidecarsIsAFunctionOfItsInputs: two passes over the same Record
// and inputs, whenever they run, write the same status.
func TestSetSidecarsIsAFunctionOfItsInputs(t *testing.T) {
	in := statusInputs{now: time.Date(2026, 12, 7, 16, 0, 0, 0, time.UTC), sidecarPods: []corev1.Pod{{
		ObjectMeta: metav1.ObjectMeta{Name: "a", Annotations: map[string]string{recbufv1alpha1.AnnotationRecordGenerations: "telemetry=1"}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}}}
	first, second := newRecord("ns", "telemetry", ringSpec(8)), newRecord("ns", "telemetry", ringSpec(8))
	first.Generation, second.Generation = 2, 2
	setSidecars(first, in)
	setSidecars(second, in) // a wall clock would have moved, by nanoseconds at least

	if !equality.Semantic.DeepEqual(first.Status, second.Status) {
		t.Errorf("got status %+v, then %+v from the same inputs, want them equal", first.Status, second.Status)
	}
}

func TestAnAppPodMapsToTheRecordsInjectedIntoIt(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Annotations: map[string]string{recbufv1alpha1.AnnotationRecordGenerations: "telemetry=1,state=4"}}}
	var got []string
	for _, r := range sidecarRecords(t.Context(), pod) {
		got = append(got, r.String())
	}
	slices.Sort(got)
	if want := []string{"ns/state", "ns/telemetry"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

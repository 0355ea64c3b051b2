package controllers

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/statusagg"
)

// These tests exercise the status functions without a client.

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

const stale = 30 * time.Second

func testRecord(mutate ...func(*recbufv1alpha1.Record)) *recbufv1alpha1.Record {
	r := newRecord("ns", "rec", ringSpec(10))
	r.Generation = 3
	r.UID = "uid-1"
	r.Spec.Replicas = ptr.To[int32](2)
	for _, m := range mutate {
		m(r)
	}
	return r
}

// deployment returns a Deployment of 2 replicas that rolled out, with
// available pods available and these conditions.
func deployment(available int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Generation: 7},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 7, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: available, AvailableReplicas: available,
			Conditions: conds,
		},
	}
}

func dcond(t appsv1.DeploymentConditionType, s corev1.ConditionStatus, reason, message string) appsv1.DeploymentCondition {
	return appsv1.DeploymentCondition{Type: t, Status: s, Reason: reason, Message: message}
}

var connected = statusagg.State{Connected: true, Since: t0.Add(-time.Hour), URL: "nats://nats:4222"}

func inputs(mutate ...func(*statusInputs)) statusInputs {
	in := statusInputs{now: t0, staleAfter: stale, state: connected}
	for _, m := range mutate {
		m(&in)
	}
	return in
}

// condition returns rec's condition of type t, failing if it has none.
func condition(t *testing.T, rec *recbufv1alpha1.Record, condType string) metav1.Condition {
	t.Helper()
	c := meta.FindStatusCondition(rec.Status.Conditions, condType)
	if c == nil {
		t.Fatalf("got no %s condition, want one", condType)
	}
	return *c
}

type wantCond struct {
	status  metav1.ConditionStatus
	reason  string
	message string // "" = not checked
}

func checkCondition(t *testing.T, rec *recbufv1alpha1.Record, condType string, want wantCond) {
	t.Helper()
	c := condition(t, rec, condType)
	if c.Status != want.status || c.Reason != want.reason {
		t.Errorf("got %s=%s (%s: %s), want %s (%s)", condType, c.Status, c.Reason, c.Message, want.status, want.reason)
	}
	if want.message != "" && c.Message != want.message {
		t.Errorf("got %s message %q, want %q", condType, c.Message, want.message)
	}
	if c.ObservedGeneration != rec.Generation {
		t.Errorf("got %s observedGeneration %d, want %d", condType, c.ObservedGeneration, rec.Generation)
	}
}

func TestRecheckAfter(t *testing.T) {
	tests := []struct {
		name string
		rec  *recbufv1alpha1.Record
		in   statusInputs
		want time.Duration
	}{
		{"nothing pending waits for events", testRecord(), inputs(), 0},
		{"a fresh report is rechecked when it expires", testRecord(),
			inputs(func(in *statusInputs) {
				in.aggregate = statusagg.Aggregate{Pods: 1, NextExpiry: t0.Add(7 * time.Second)}
			}),
			7*time.Second + recheckMargin},
		{"a manager that just connected rechecks when its grace ends", testRecord(),
			inputs(func(in *statusInputs) { in.state.Since = t0.Add(-10 * time.Second) }),
			20*time.Second + recheckMargin},
		{"a Record just available rechecks when its reports are due", testRecord(func(r *recbufv1alpha1.Record) {
			setCondition(r, t0.Add(-25*time.Second), recbufv1alpha1.ConditionAvailable, metav1.ConditionTrue, "x", "")
		}), inputs(), 5*time.Second + recheckMargin},
		{"a reporting pod is rechecked when it would go silent", testRecord(),
			inputs(func(in *statusInputs) {
				in.reportInterval = 2 * time.Second
				in.pods = []corev1.Pod{runningPod("door-recbuf-a", t0.Add(-time.Hour))}
				in.aggregate = statusagg.Aggregate{Pods: 1, NextExpiry: t0.Add(29 * time.Second),
					PodReports: []statusagg.PodReport{heard("door-recbuf-a", t0.Add(-time.Second))}}
			}),
			2*time.Second + recheckMargin},
		{"a starting pod is rechecked when it would be judged", testRecord(),
			inputs(func(in *statusInputs) {
				in.reportInterval = 2 * time.Second
				in.pods = []corev1.Pod{runningPod("door-recbuf-a", t0.Add(-time.Second))}
			}),
			2*time.Second + recheckMargin},
		{"a silent pod is rechecked every interval, as its next report may equal its last", testRecord(),
			inputs(func(in *statusInputs) {
				in.reportInterval = 2 * time.Second
				in.pods = []corev1.Pod{runningPod("door-recbuf-a", t0.Add(-time.Hour))}
			}),
			2*time.Second + recheckMargin},
		{"a pod silent since a settings change is rechecked when its grace ends", testRecord(),
			inputs(func(in *statusInputs) {
				in.settingsChanged = t0.Add(-time.Minute)
				in.pods = []corev1.Pod{runningPod("door-recbuf-a", t0.Add(-time.Hour))}
			}),
			time.Minute + recheckMargin},
		{"a disconnected manager waits for the connection", testRecord(),
			inputs(func(in *statusInputs) { in.state = statusagg.State{} }), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := recheckAfter(tt.rec, tt.in); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

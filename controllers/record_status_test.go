package controllers

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
	"github.com/recbuf/recbuf/internal/report"
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

func TestSetAvailableCondition(t *testing.T) {
	tests := []struct {
		name string
		rec  *recbufv1alpha1.Record
		in   statusInputs
		want wantCond
	}{
		{
			name: "a Record scaled to zero is not available",
			rec:  testRecord(func(r *recbufv1alpha1.Record) { r.Spec.Replicas = ptr.To[int32](0) }),
			in:   inputs(func(in *statusInputs) { in.deployment = deployment(0) }),
			want: wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonScaledToZero, "spec.replicas is 0: no buffer pod serves the record"},
		},
		{
			name: "a missing Deployment is not available",
			rec:  testRecord(),
			in:   inputs(),
			want: wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentNotFound, "Deployment rec-recbuf does not exist"},
		},
		{
			name: "a Deployment that reported nothing yet is not available",
			rec:  testRecord(),
			in:   inputs(func(in *statusInputs) { in.deployment = deployment(0) }),
			want: wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable, "0 of 2 buffer pods available: the Deployment has not reported availability yet"},
		},
		{
			name: "an available Deployment makes the Record available",
			rec:  testRecord(),
			in: inputs(func(in *statusInputs) {
				in.deployment = deployment(1, dcond(appsv1.DeploymentAvailable, corev1.ConditionTrue, "MinimumReplicasAvailable", ""))
			}),
			want: wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonMinimumReplicasAvailable, "1 of 2 buffer pods available"},
		},
		{
			name: "an unavailable Deployment's message is passed on",
			rec:  testRecord(),
			in: inputs(func(in *statusInputs) {
				in.deployment = deployment(0, dcond(appsv1.DeploymentAvailable, corev1.ConditionFalse, "MinimumReplicasUnavailable", "Deployment does not have minimum availability."))
			}),
			want: wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable, "0 of 2 buffer pods available: Deployment does not have minimum availability."},
		},
		{
			name: "a Deployment that has not observed its new spec is not available on the word of its old one",
			rec:  testRecord(),
			in: inputs(func(in *statusInputs) {
				// Scaled up from zero: Available=True still describes zero replicas.
				in.deployment = deployment(0, dcond(appsv1.DeploymentAvailable, corev1.ConditionTrue, "MinimumReplicasAvailable", ""))
				in.deployment.Generation = 8
			}),
			want: wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable, "0 of 2 buffer pods available: waiting for the Deployment controller to observe generation 8"},
		},
		{
			name: "a Deployment without one available pod serves nobody, whatever its condition says",
			rec:  testRecord(),
			in: inputs(func(in *statusInputs) {
				in.deployment = deployment(0, dcond(appsv1.DeploymentAvailable, corev1.ConditionTrue, "MinimumReplicasAvailable", ""))
			}),
			want: wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable, "0 of 2 buffer pods available: no buffer pod is ready to serve consumers"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setAvailableCondition(tt.rec, tt.in)
			checkCondition(t, tt.rec, recbufv1alpha1.ConditionAvailable, tt.want)
		})
	}
}

func TestSetStalledCondition(t *testing.T) {
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "rec-recbuf",
		field.ErrorList{field.Invalid(field.NewPath("spec", "template"), "x", "requests must not exceed limits")})
	tests := []struct {
		name string
		in   statusInputs
		want wantCond
	}{
		{
			name: "nothing wrong is not stalled",
			in:   inputs(func(in *statusInputs) { in.deployment = deployment(2) }),
			want: wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonProgressing, "nothing blocks the rollout"},
		},
		{
			name: "a Deployment owned by another controller stalls",
			in: inputs(func(in *statusInputs) {
				in.childErrs = childErrors{kindDeployment: &controllerutil.AlreadyOwnedError{Object: &appsv1.Deployment{}}}
			}),
			want: wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonChildConflict, "a Deployment named rec-recbuf exists that this Record does not manage: delete it, or rename the Record"},
		},
		{
			name: "a Service that exists unmanaged stalls",
			in: inputs(func(in *statusInputs) {
				in.childErrs = childErrors{kindService: apierrors.NewAlreadyExists(schema.GroupResource{Resource: "services"}, "rec-recbuf")}
			}),
			want: wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonChildConflict, "a Service named rec-recbuf exists that this Record does not manage: delete it, or rename the Record"},
		},
		{
			name: "a Deployment the API server refuses stalls with its answer",
			in:   inputs(func(in *statusInputs) { in.childErrs = childErrors{kindDeployment: invalid} }),
			want: wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonChildRefused, "the API server refused the Deployment: " + invalid.Error()},
		},
		{
			name: "a transient error does not stall",
			in: inputs(func(in *statusInputs) {
				in.deployment = deployment(2)
				in.childErrs = childErrors{kindDeployment: apierrors.NewServerTimeout(schema.GroupResource{Resource: "deployments"}, "update", 1)}
			}),
			want: wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonProgressing, ""},
		},
		{
			name: "a missed progress deadline stalls",
			in: inputs(func(in *statusInputs) {
				in.deployment = deployment(0, dcond(appsv1.DeploymentProgressing, corev1.ConditionFalse, "ProgressDeadlineExceeded", "timed out"))
			}),
			want: wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonProgressDeadlineExceeded, "timed out"},
		},
		{
			name: "pods that cannot be created stall",
			in: inputs(func(in *statusInputs) {
				in.deployment = deployment(0, dcond(appsv1.DeploymentReplicaFailure, corev1.ConditionTrue, "FailedCreate", "exceeded quota"))
			}),
			want: wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonReplicaFailure, "exceeded quota"},
		},
		{
			name: "a conflict is reported before the Deployment's own failures",
			in: inputs(func(in *statusInputs) {
				in.deployment = deployment(0, dcond(appsv1.DeploymentReplicaFailure, corev1.ConditionTrue, "FailedCreate", "exceeded quota"))
				in.childErrs = childErrors{kindService: apierrors.NewAlreadyExists(schema.GroupResource{Resource: "services"}, "rec-recbuf")}
			}),
			want: wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonChildConflict, ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := testRecord()
			setStalledCondition(rec, tt.in)
			checkCondition(t, rec, recbufv1alpha1.ConditionStalled, tt.want)
		})
	}
}

func TestSetReconcilingCondition(t *testing.T) {
	timeout := apierrors.NewServerTimeout(schema.GroupResource{Group: "apps", Resource: "deployments"}, "update", 1)
	rolled := func(mutate func(*appsv1.Deployment)) func(*statusInputs) {
		return func(in *statusInputs) {
			in.deployment = deployment(2)
			mutate(in.deployment)
		}
	}
	tests := []struct {
		name    string
		stalled bool
		in      statusInputs
		want    wantCond
	}{
		{"a missing Deployment is being rolled out", false, inputs(),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonRollingOut, "waiting for Deployment rec-recbuf to be created"}},
		{"an unobserved generation is being rolled out", false,
			inputs(rolled(func(d *appsv1.Deployment) { d.Generation = 8 })),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonRollingOut, "waiting for the Deployment controller to observe generation 8"}},
		{"pods not yet updated are being rolled out", false,
			inputs(rolled(func(d *appsv1.Deployment) { d.Status.UpdatedReplicas = 1 })),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonRollingOut, "1 of 2 buffer pods updated"}},
		{"old pods still running are being rolled out", false,
			inputs(rolled(func(d *appsv1.Deployment) { d.Status.Replicas = 3 })),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonRollingOut, "1 old buffer pods pending termination"}},
		{"updated pods not yet available are being rolled out", false,
			inputs(rolled(func(d *appsv1.Deployment) { d.Status.AvailableReplicas = 1 })),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonRollingOut, "1 of 2 updated buffer pods available"}},
		{"a rolled out Deployment is up to date", false, inputs(rolled(func(*appsv1.Deployment) {})),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonUpToDate, "all 2 buffer pods run the current spec"}},
		{"a stalled rollout is not reconciling", true, inputs(),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonReplicaFailure, "the rollout is stalled: exceeded quota"}},
		{"a Deployment update that timed out is retried and says why", false,
			inputs(rolled(func(*appsv1.Deployment) {}), func(in *statusInputs) { in.childErrs = childErrors{kindDeployment: timeout} }),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonReconcileError, "reconciling the Deployment failed, retrying: " + timeout.Error()}},
		{"a Service that could not be written is retried although the Deployment rolled out", false,
			inputs(rolled(func(*appsv1.Deployment) {}), func(in *statusInputs) { in.childErrs = childErrors{kindService: errors.New("connection refused")} }),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonReconcileError, "reconciling the Service failed, retrying: connection refused"}},
		{"a refusal is left to Stalled, not reported as a retry", false,
			inputs(rolled(func(*appsv1.Deployment) {}), func(in *statusInputs) {
				in.childErrs = childErrors{kindService: apierrors.NewForbidden(schema.GroupResource{Resource: "services"}, "rec-recbuf", errors.New("no"))}
			}),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonUpToDate, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := testRecord()
			if tt.stalled {
				setCondition(rec, t0, recbufv1alpha1.ConditionStalled, metav1.ConditionTrue, recbufv1alpha1.ReasonReplicaFailure, "exceeded quota")
			}
			setReconcilingCondition(rec, tt.in)
			checkCondition(t, rec, recbufv1alpha1.ConditionReconciling, tt.want)
		})
	}
}

// runningPod is a buffer pod whose container has run since started.
func runningPod(name string, started time.Time) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: bufferpod.ContainerName, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}},
		}}},
	}
}

// heard is a fresh report of pod received at t.
func heard(pod string, t time.Time) statusagg.PodReport {
	return statusagg.PodReport{Pod: pod, Received: t}
}

// heardEvery is a report received at t from a pod that reports every interval.
func heardEvery(pod string, t time.Time, interval time.Duration) statusagg.PodReport {
	return statusagg.PodReport{Pod: pod, Received: t, Interval: interval}
}

func TestSetNATSConnectedCondition(t *testing.T) {
	longAgo := t0.Add(-time.Hour)
	tests := []struct {
		name string
		in   statusInputs
		want wantCond
	}{
		{"pods that report are connected",
			inputs(func(in *statusInputs) {
				in.pods = []corev1.Pod{runningPod("door-recbuf-a", longAgo), runningPod("door-recbuf-b", longAgo)}
				in.aggregate = statusagg.Aggregate{Pods: 2, PodReports: []statusagg.PodReport{
					heard("door-recbuf-a", t0.Add(-time.Second)), heard("door-recbuf-b", t0.Add(-2*time.Second))}}
			}),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonConnected, "all 2 reporting buffer pods are connected to NATS"}},
		{"a running pod whose reports stopped is disconnected, and is named",
			inputs(func(in *statusInputs) {
				in.pods = []corev1.Pod{runningPod("door-recbuf-a", longAgo), runningPod("door-recbuf-b", longAgo)}
				in.aggregate = statusagg.Aggregate{Pods: 2, PodReports: []statusagg.PodReport{
					heard("door-recbuf-a", t0.Add(-time.Second)), heard("door-recbuf-b", t0.Add(-8*time.Second))}}
			}),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonDisconnected,
				"1 of 2 buffer pods are not connected to NATS (running, but no report for 7.5s): door-recbuf-b"}},
		{"a running pod that never reported is disconnected once it ran for one and a half intervals",
			inputs(func(in *statusInputs) { in.pods = []corev1.Pod{runningPod("door-recbuf-c", t0.Add(-8*time.Second))} }),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonDisconnected,
				"1 of 1 buffer pods are not connected to NATS (running, but no report for 7.5s): door-recbuf-c"}},
		{"a pod that just started is not judged yet",
			inputs(func(in *statusInputs) { in.pods = []corev1.Pod{runningPod("door-recbuf-c", t0.Add(-2*time.Second))} }),
			wantCond{metav1.ConditionUnknown, recbufv1alpha1.ReasonNoReports, ""}},
		{"a pod being deleted is not expected to report",
			inputs(func(in *statusInputs) {
				p := runningPod("door-recbuf-c", longAgo)
				p.DeletionTimestamp = ptr.To(metav1.NewTime(t0.Add(-time.Minute)))
				in.pods = []corev1.Pod{p}
			}),
			wantCond{metav1.ConditionUnknown, recbufv1alpha1.ReasonNoReports, ""}},
		{"a pod whose container does not run is not expected to report",
			inputs(func(in *statusInputs) {
				p := runningPod("door-recbuf-c", longAgo)
				p.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
				in.pods = []corev1.Pod{p}
			}),
			wantCond{metav1.ConditionUnknown, recbufv1alpha1.ReasonNoReports, ""}},
		{"pods are not judged before the manager listened for one and a half intervals",
			inputs(func(in *statusInputs) {
				in.state.Since = t0.Add(-2 * time.Second)
				in.pods = []corev1.Pod{runningPod("door-recbuf-c", longAgo)}
			}),
			wantCond{metav1.ConditionUnknown, recbufv1alpha1.ReasonNoReports, ""}},
		{"many silent pods are named up to five",
			inputs(func(in *statusInputs) {
				for _, p := range []string{"a", "b", "c", "d", "e", "f", "g"} {
					in.pods = append(in.pods, runningPod(p, longAgo))
				}
			}),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonDisconnected,
				"7 of 7 buffer pods are not connected to NATS (running, but no report for 7.5s): a, b, c, d, e, and 2 more"}},
		{"a disconnected manager cannot tell, and judges no pod silent",
			inputs(func(in *statusInputs) {
				in.state = statusagg.State{URL: "nats://nats:4222"}
				in.pods = []corev1.Pod{runningPod("door-recbuf-c", longAgo)}
			}),
			wantCond{metav1.ConditionUnknown, recbufv1alpha1.ReasonManagerDisconnected, "the manager is not connected to NATS at nats://nats:4222, so it receives no reports"}},
		{"no report cannot tell", inputs(),
			wantCond{metav1.ConditionUnknown, recbufv1alpha1.ReasonNoReports, "no buffer pod reported within 30s"}},
		{"a pod is judged by the interval its report carries, not the manager's",
			inputs(func(in *statusInputs) {
				in.reportInterval = time.Second
				in.pods = []corev1.Pod{runningPod("door-recbuf-a", longAgo)}
				in.aggregate = statusagg.Aggregate{Pods: 1, PodReports: []statusagg.PodReport{
					heardEvery("door-recbuf-a", t0.Add(-5*time.Second), 4*time.Second)}}
			}),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonConnected, ""}},
		{"a pod silent for one and a half of its own intervals is disconnected",
			inputs(func(in *statusInputs) {
				in.reportInterval = 10 * time.Second
				in.pods = []corev1.Pod{runningPod("door-recbuf-a", longAgo)}
				in.aggregate = statusagg.Aggregate{Pods: 1, PodReports: []statusagg.PodReport{
					heardEvery("door-recbuf-a", t0.Add(-4*time.Second), 2*time.Second)}}
			}),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonDisconnected,
				"1 of 1 buffer pods are not connected to NATS (running, but no report for 3s): door-recbuf-a"}},
		{"a pod silent since the report settings changed is not judged before it could have applied them",
			inputs(func(in *statusInputs) {
				in.settingsChanged = t0.Add(-time.Minute)
				in.pods = []corev1.Pod{runningPod("door-recbuf-a", longAgo), runningPod("door-recbuf-b", longAgo)}
				in.aggregate = statusagg.Aggregate{Pods: 2, PodReports: []statusagg.PodReport{
					heard("door-recbuf-a", t0.Add(-70*time.Second)), heard("door-recbuf-b", t0.Add(-time.Second))}}
			}),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonConnected, ""}},
		{"a pod that never reported since the change is not judged either",
			inputs(func(in *statusInputs) {
				in.settingsChanged = t0.Add(-time.Minute)
				in.pods = []corev1.Pod{runningPod("door-recbuf-a", longAgo)}
			}),
			wantCond{metav1.ConditionUnknown, recbufv1alpha1.ReasonNoReports, ""}},
		{"a pod silent since the change is judged once the settings had time to reach it",
			inputs(func(in *statusInputs) {
				in.settingsChanged = t0.Add(-settingsPropagation - time.Second)
				in.pods = []corev1.Pod{runningPod("door-recbuf-a", longAgo)}
			}),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonDisconnected,
				"1 of 1 buffer pods are not connected to NATS (running, but no report for 7.5s): door-recbuf-a"}},
		{"a pod started after the change has the new settings, and gets no grace",
			inputs(func(in *statusInputs) {
				in.settingsChanged = t0.Add(-time.Minute)
				in.pods = []corev1.Pod{runningPod("door-recbuf-a", t0.Add(-50*time.Second))}
			}),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonDisconnected,
				"1 of 1 buffer pods are not connected to NATS (running, but no report for 7.5s): door-recbuf-a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := testRecord()
			setNATSConnectedCondition(rec, tt.in, judgePods(tt.in))
			checkCondition(t, rec, recbufv1alpha1.ConditionNATSConnected, tt.want)
		})
	}
}

func TestSilentPodsAreListedAsDisconnected(t *testing.T) {
	in := inputs(func(in *statusInputs) {
		in.pods = []corev1.Pod{
			runningPod("door-recbuf-a", t0.Add(-time.Hour)),
			runningPod("door-recbuf-b", t0.Add(-time.Hour)),
			runningPod("door-recbuf-new", t0.Add(-time.Second)),
		}
		in.aggregate = statusagg.Aggregate{Pods: 2, LastReport: t0, PodReports: []statusagg.PodReport{
			{Pod: "door-recbuf-a", Received: t0, Counters: report.Counters{Produced: 4}},
			{Pod: "door-recbuf-b", Received: t0.Add(-10 * time.Second), Counters: report.Counters{Produced: 6}},
		}}
	})
	rec := testRecord()
	setCounters(rec, in, judgePods(in))
	want := []recbufv1alpha1.RecordPodStatus{
		{Name: "door-recbuf-a", Connected: true, Produced: 4},
		{Name: "door-recbuf-b", Connected: false, Produced: 6},
	}
	if !slices.Equal(rec.Status.Pods, want) {
		t.Errorf("got pods %+v, want %+v (the starting pod unlisted)", rec.Status.Pods, want)
	}
}

func TestSetReportingCondition(t *testing.T) {
	reported := func(r *recbufv1alpha1.Record) { r.Status.LastReportTime = ptr.To(metav1.NewTime(t0.Add(-time.Hour))) }
	availableSince := func(d time.Duration) func(*recbufv1alpha1.Record) {
		return func(r *recbufv1alpha1.Record) {
			setCondition(r, t0.Add(-d), recbufv1alpha1.ConditionAvailable, metav1.ConditionTrue, recbufv1alpha1.ReasonMinimumReplicasAvailable, "")
		}
	}
	wasStale := func(r *recbufv1alpha1.Record) {
		setCondition(r, t0, recbufv1alpha1.ConditionReporting, metav1.ConditionFalse, recbufv1alpha1.ReasonStale, "old")
	}
	justConnected := func(in *statusInputs) { in.state.Since = t0.Add(-stale / 2) }
	staleMsg := "no buffer pod reported for more than 30s: the counters are the last received"
	tests := []struct {
		name string
		rec  *recbufv1alpha1.Record
		in   statusInputs
		want wantCond
	}{
		{"a fresh report makes it reporting", testRecord(),
			inputs(func(in *statusInputs) { in.aggregate.Pods = 2 }),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonReportsFresh, "2 buffer pods reporting"}},
		{"a Record scaled to zero does not report", testRecord(func(r *recbufv1alpha1.Record) { r.Spec.Replicas = ptr.To[int32](0) }),
			inputs(), wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonScaledToZero, ""}},
		{"a disconnected manager cannot tell", testRecord(reported),
			inputs(func(in *statusInputs) { in.state = statusagg.State{URL: "nats://x"} }),
			wantCond{metav1.ConditionUnknown, recbufv1alpha1.ReasonManagerDisconnected, ""}},
		{"a manager that just connected waits for the first report", testRecord(reported),
			inputs(justConnected),
			wantCond{metav1.ConditionUnknown, recbufv1alpha1.ReasonAwaitingReports, "waiting for the buffer pods' first report"}},
		{"a manager that just connected keeps what was known", testRecord(reported, wasStale),
			inputs(justConnected),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonStale, "old"}},
		{"a Record that reported before and not within report-stale-after is stale", testRecord(reported),
			inputs(), wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonStale, staleMsg}},
		{"a Record available for longer than report-stale-after without a report is stale", testRecord(availableSince(time.Minute)),
			inputs(), wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonStale, staleMsg}},
		{"a Record available only just now waits for the first report", testRecord(availableSince(time.Second)),
			inputs(), wantCond{metav1.ConditionUnknown, recbufv1alpha1.ReasonAwaitingReports, ""}},
		{"a Record that never ran waits for the first report", testRecord(),
			inputs(), wantCond{metav1.ConditionUnknown, recbufv1alpha1.ReasonAwaitingReports, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setReportingCondition(tt.rec, tt.in)
			checkCondition(t, tt.rec, recbufv1alpha1.ConditionReporting, tt.want)
		})
	}
}

// setCountersFrom runs setCounters on the pods as in judges them, with a
// pending pod for each pod report (only the Record's pods count).
func setCountersFrom(rec *recbufv1alpha1.Record, in statusInputs) {
	for _, p := range in.aggregate.PodReports {
		in.pods = append(in.pods, corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Pod}, Status: corev1.PodStatus{Phase: corev1.PodPending}})
	}
	setCounters(rec, in, judgePods(in))
}

func TestReportsOfPodsThatAreNotTheRecordsCountForNothing(t *testing.T) {
	in := inputs(func(in *statusInputs) {
		in.pods = []corev1.Pod{runningPod("door-recbuf-a", t0.Add(-time.Hour))}
		in.aggregate = statusagg.Aggregate{Pods: 2, LastReport: t0, PodReports: []statusagg.PodReport{
			{Pod: "door-recbuf-a", Received: t0, Counters: report.Counters{Produced: 4}},
			{Pod: "evil-pod", Received: t0, Counters: report.Counters{Produced: 999999999}},
		}}
	})
	rec := testRecord()
	pods := judgePods(in)
	setCounters(rec, in, pods)
	setNATSConnectedCondition(rec, in, pods)
	want := []recbufv1alpha1.RecordPodStatus{{Name: "door-recbuf-a", Connected: true, Produced: 4}}
	if !slices.Equal(rec.Status.Pods, want) {
		t.Errorf("got pods %+v, want %+v (evil-pod unlisted)", rec.Status.Pods, want)
	}
}

func TestSetCounters(t *testing.T) {
	lastMsg := t0.Add(-time.Minute + 300*time.Millisecond)
	agg := statusagg.Aggregate{
		Pods: 2, LastReport: t0.Add(-time.Second),
		PodReports: []statusagg.PodReport{
			{Pod: "door-recbuf-a", Counters: report.Counters{Produced: 4, Delivered: 8, Subscribers: 1, LagEvents: 1, LaggedValues: 5,
				Skipped: 2, Overwrites: 7, Dropped: 8, LastMessageTime: lastMsg}},
			{Pod: "door-recbuf-b", Counters: report.Counters{Produced: 10, Delivered: 12, Subscribers: 2, Skipped: 4,
				LastMessageTime: lastMsg.Add(-time.Minute)}},
		},
	}

	t.Run("the counters are copied with times at the API's precision", func(t *testing.T) {
		rec := testRecord()
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = agg }))
		st := rec.Status
		got := [...]int64{int64(st.ReportingPods), st.Produced, st.Delivered, st.Subscribers, st.LagEvents, st.LaggedValues, st.Skipped, st.Overwrites, st.Dropped}
		if want := [...]int64{2, 10, 20, 3, 1, 5, 6, 7, 8}; got != want {
			t.Errorf("got %v, want %v", got, want)
		}
		if want := lastMsg.Truncate(time.Second); !st.LastMessageTime.Time.Equal(want) {
			t.Errorf("got lastMessageTime %v, want %v", st.LastMessageTime, want)
		}
		if want := t0.Add(-time.Second); !st.LastReportTime.Time.Equal(want) {
			t.Errorf("got lastReportTime %v, want %v", st.LastReportTime, want)
		}
	})

	t.Run("each reporting pod is listed with its own counters", func(t *testing.T) {
		rec := testRecord()
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = agg }))
		want := []recbufv1alpha1.RecordPodStatus{
			{Name: "door-recbuf-a", Connected: true, Produced: 4, Subscribers: 1, Dropped: 8},
			{Name: "door-recbuf-b", Connected: true, Produced: 10, Subscribers: 2},
		}
		if !slices.Equal(rec.Status.Pods, want) {
			t.Errorf("got pods %+v, want %+v", rec.Status.Pods, want)
		}
	})

	t.Run("a change in one pod alone is a change", func(t *testing.T) {
		rec := testRecord()
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = agg }))
		later := agg
		later.LastReport = t0.Add(10 * time.Second)
		later.PodReports = slices.Clone(agg.PodReports)
		later.PodReports[1].Counters.Dropped = 1
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = later }))
		if rec.Status.Pods[1].Dropped != 1 || !rec.Status.LastReportTime.Time.Equal(later.LastReport) {
			t.Errorf("got pods %+v and lastReportTime %v, want pod b dropping 1 at %v", rec.Status.Pods, rec.Status.LastReportTime, later.LastReport)
		}
	})

	t.Run("the pod list is bounded", func(t *testing.T) {
		rec := testRecord()
		many := agg
		many.PodReports = nil
		for i := range recbufv1alpha1.MaxPodStatuses + 10 {
			many.PodReports = append(many.PodReports, statusagg.PodReport{Pod: fmt.Sprintf("door-recbuf-%03d", i)})
		}
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = many }))
		if got := len(rec.Status.Pods); got != recbufv1alpha1.MaxPodStatuses {
			t.Errorf("got %d pods listed, want %d", got, recbufv1alpha1.MaxPodStatuses)
		}
	})

	t.Run("unchanged sums leave lastReportTime alone", func(t *testing.T) {
		rec := testRecord()
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = agg }))
		before := rec.Status.DeepCopy()
		later := agg
		later.LastReport = t0.Add(10 * time.Second)
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = later }))
		if !rec.Status.LastReportTime.Equal(before.LastReportTime) {
			t.Errorf("got lastReportTime %v, want it unchanged at %v", rec.Status.LastReportTime, before.LastReportTime)
		}
	})

	t.Run("no fresh report keeps the last sums", func(t *testing.T) {
		rec := testRecord()
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = agg }))
		setCountersFrom(rec, inputs())
		if rec.Status.ReportingPods != 0 || rec.Status.Produced != 10 || rec.Status.Pods != nil {
			t.Errorf("got %d pods (%v) and produced %d, want 0 pods, none listed, and produced 10",
				rec.Status.ReportingPods, rec.Status.Pods, rec.Status.Produced)
		}
	})

	t.Run("a sum past the API's int64 saturates", func(t *testing.T) {
		rec := testRecord()
		huge := agg
		huge.PodReports = slices.Clone(agg.PodReports)
		huge.PodReports[0].Counters.Delivered = math.MaxUint64
		setCountersFrom(rec, inputs(func(in *statusInputs) { in.aggregate = huge }))
		if rec.Status.Delivered != math.MaxInt64 {
			t.Errorf("got delivered %d, want %d", rec.Status.Delivered, int64(math.MaxInt64))
		}
	})
}

// TestTheRecordsCountersCountEachValueOnceHoweverManyCopiesRun: two
// replicas and an app pod with the buffer injected each take in the 1100
// values the devices published; the Record took in 1100, not 3300.
func TestTheRecordsCountersCountEachValueOnceHoweverManyCopiesRun(t *testing.T) {
	copies := []statusagg.PodReport{
		{Pod: "telemetry-recbuf-a", Counters: report.Counters{Produced: 1100, Delivered: 1100, Subscribers: 1, Evicted: 76, Dropped: 2}},
		{Pod: "telemetry-recbuf-b", Counters: report.Counters{Produced: 1100, Delivered: 2200, Subscribers: 2, Evicted: 76, Dropped: 2, LaggedValues: 3}},
		{Pod: "dashboard-7f9c", Counters: report.Counters{Produced: 1040, Delivered: 1040, Subscribers: 1, Evicted: 16, Dropped: 2}},
	}
	queued := []statusagg.PodReport{
		{Pod: "telemetry-recbuf-a", Counters: report.Counters{Produced: 600, Delivered: 600, Subscribers: 1, Dropped: 1}},
		{Pod: "telemetry-recbuf-b", Counters: report.Counters{Produced: 500, Delivered: 500, Subscribers: 1, Dropped: 1}},
	}
	tests := []struct {
		name       string
		queueGroup string
		pods       []statusagg.PodReport
		want       [7]int64 // produced, evicted, dropped, delivered, subscribers, laggedValues, overwrites
	}{
		{"copies that each take in every value count each value once, consumers add up", "", copies,
			[7]int64{1100, 76, 2, 4340, 4, 3, 0}},
		{"pods of a queue group split the values, so everything adds up", "telemetry", queued,
			[7]int64{1100, 0, 2, 1100, 2, 0, 0}},
		{"a single pod's counters are the Record's", "", copies[:1],
			[7]int64{1100, 76, 2, 1100, 1, 0, 0}},
		{"no pod, no counts", "", nil, [7]int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := testRecord()
			if tt.queueGroup != "" {
				rec.Spec.Source = &recbufv1alpha1.SourceSpec{NATS: recbufv1alpha1.NATSSource{QueueGroup: tt.queueGroup}}
			}
			c := statusCounters(recordCounters(rec, tt.pods))
			got := [7]int64{c.Produced, c.Evicted, c.Dropped, c.Delivered, c.Subscribers, c.LaggedValues, c.Overwrites}
			if got != tt.want {
				t.Errorf("got produced, evicted, dropped, delivered, subscribers, laggedValues, overwrites = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSetReadyCondition(t *testing.T) {
	set := func(condType string, s metav1.ConditionStatus, reason, msg string) func(*recbufv1alpha1.Record) {
		return func(r *recbufv1alpha1.Record) { setCondition(r, t0, condType, s, reason, msg) }
	}
	available := set(recbufv1alpha1.ConditionAvailable, metav1.ConditionTrue, recbufv1alpha1.ReasonMinimumReplicasAvailable, "2 of 2 buffer pods available")
	tests := []struct {
		name string
		rec  *recbufv1alpha1.Record
		want wantCond
	}{
		{"available pods make it ready", testRecord(available),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonReady, "2 of 2 buffer pods available"}},
		{"pods of unknown NATS state still make it ready", testRecord(available,
			set(recbufv1alpha1.ConditionNATSConnected, metav1.ConditionUnknown, recbufv1alpha1.ReasonNoReports, "")),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonReady, ""}},
		{"unavailable pods make it not ready", testRecord(
			set(recbufv1alpha1.ConditionAvailable, metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable, "0 of 2")),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable, "0 of 2"}},
		{"disconnected pods make it not ready", testRecord(available,
			set(recbufv1alpha1.ConditionNATSConnected, metav1.ConditionFalse, recbufv1alpha1.ReasonDisconnected, "1 of 2")),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonDisconnected, "1 of 2"}},
		{"a failed reconcile makes it not ready although pods are available", testRecord(available,
			set(recbufv1alpha1.ConditionReconciling, metav1.ConditionTrue, recbufv1alpha1.ReasonReconcileError, "reconciling the Service failed, retrying: timeout")),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonReconcileError, "reconciling the Service failed, retrying: timeout"}},
		{"a rollout in progress alone does not make it not ready", testRecord(available,
			set(recbufv1alpha1.ConditionReconciling, metav1.ConditionTrue, recbufv1alpha1.ReasonRollingOut, "1 of 2 buffer pods updated")),
			wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonReady, ""}},
		{"a stalled rollout comes before a failed reconcile", testRecord(available,
			set(recbufv1alpha1.ConditionStalled, metav1.ConditionTrue, recbufv1alpha1.ReasonChildConflict, "taken"),
			set(recbufv1alpha1.ConditionReconciling, metav1.ConditionTrue, recbufv1alpha1.ReasonReconcileError, "timeout")),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonChildConflict, "taken"}},
		{"a stalled rollout comes first", testRecord(available,
			set(recbufv1alpha1.ConditionStalled, metav1.ConditionTrue, recbufv1alpha1.ReasonReplicaFailure, "quota"),
			set(recbufv1alpha1.ConditionNATSConnected, metav1.ConditionFalse, recbufv1alpha1.ReasonDisconnected, "1 of 2")),
			wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonReplicaFailure, "quota"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setReadyCondition(tt.rec, inputs())
			checkCondition(t, tt.rec, recbufv1alpha1.ConditionReady, tt.want)
		})
	}
}

// TestATransientErrorSurfacesInReady runs the whole status computation:
// a Deployment that could not even be read is a retried error, not a
// stall, and Ready explains it instead of calling the Deployment missing.
func TestATransientErrorSurfacesInReady(t *testing.T) {
	rec := testRecord()
	computeStatus(rec, inputs(func(in *statusInputs) {
		in.childErrs = childErrors{kindDeployment: apierrors.NewTooManyRequests("slow down", 1)}
	}))
	want := "reconciling the Deployment failed, retrying: slow down"
	checkCondition(t, rec, recbufv1alpha1.ConditionStalled, wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonProgressing, ""})
	checkCondition(t, rec, recbufv1alpha1.ConditionReconciling, wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonReconcileError, want})
	checkCondition(t, rec, recbufv1alpha1.ConditionReady, wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonReconcileError, want})

	computeStatus(rec, inputs(func(in *statusInputs) {
		in.deployment = deployment(2, dcond(appsv1.DeploymentAvailable, corev1.ConditionTrue, "", ""))
	}))
	checkCondition(t, rec, recbufv1alpha1.ConditionReconciling, wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonUpToDate, ""})
	checkCondition(t, rec, recbufv1alpha1.ConditionReady, wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonReady, ""})
}

func TestATransitionKeepsTheTransitionTimeOfAnUnchangedStatus(t *testing.T) {
	rec := testRecord()
	setCondition(rec, t0, recbufv1alpha1.ConditionReady, metav1.ConditionFalse, "A", "a")
	setCondition(rec, t0.Add(time.Minute), recbufv1alpha1.ConditionReady, metav1.ConditionFalse, "B", "b")
	if got := condition(t, rec, recbufv1alpha1.ConditionReady); !got.LastTransitionTime.Time.Equal(t0) || got.Reason != "B" {
		t.Errorf("got %+v, want reason B with the first transition time %v", got, t0)
	}
	setCondition(rec, t0.Add(2*time.Minute+500*time.Millisecond), recbufv1alpha1.ConditionReady, metav1.ConditionTrue, "C", "c")
	if got := condition(t, rec, recbufv1alpha1.ConditionReady); !got.LastTransitionTime.Time.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("got transition time %v, want %v (seconds)", got.LastTransitionTime, t0.Add(2*time.Minute))
	}
}

func TestConditionTransitions(t *testing.T) {
	c := func(condType string, s metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: condType, Status: s, Reason: reason, Message: reason + " message"}
	}
	ready := c(recbufv1alpha1.ConditionReady, metav1.ConditionTrue, recbufv1alpha1.ReasonReady)
	notReady := c(recbufv1alpha1.ConditionReady, metav1.ConditionFalse, recbufv1alpha1.ReasonDeploymentUnavailable)
	scaledDown := c(recbufv1alpha1.ConditionReady, metav1.ConditionFalse, recbufv1alpha1.ReasonScaledToZero)
	stalled := c(recbufv1alpha1.ConditionStalled, metav1.ConditionTrue, recbufv1alpha1.ReasonReplicaFailure)
	notStalled := c(recbufv1alpha1.ConditionStalled, metav1.ConditionFalse, recbufv1alpha1.ReasonProgressing)
	fresh := c(recbufv1alpha1.ConditionReporting, metav1.ConditionTrue, recbufv1alpha1.ReasonReportsFresh)
	staleC := c(recbufv1alpha1.ConditionReporting, metav1.ConditionFalse, recbufv1alpha1.ReasonStale)
	awaiting := c(recbufv1alpha1.ConditionReporting, metav1.ConditionUnknown, recbufv1alpha1.ReasonAwaitingReports)
	available := c(recbufv1alpha1.ConditionAvailable, metav1.ConditionTrue, recbufv1alpha1.ReasonMinimumReplicasAvailable)
	tests := []struct {
		name          string
		before, after []metav1.Condition
		want          []string // eventType/reason
	}{
		{"a new Record's expected first states make no Event", nil, []metav1.Condition{notReady, notStalled, awaiting}, nil},
		{"a new Record that is stalled at once makes a Warning", nil, []metav1.Condition{notReady, stalled}, []string{"Warning/ReplicaFailure"}},
		{"becoming ready makes a Normal Event", []metav1.Condition{notReady}, []metav1.Condition{ready}, []string{"Normal/Ready"}},
		{"becoming not ready makes a Warning", []metav1.Condition{ready}, []metav1.Condition{notReady}, []string{"Warning/DeploymentUnavailable"}},
		{"being scaled to zero is no Warning", []metav1.Condition{ready}, []metav1.Condition{scaledDown}, []string{"Normal/ScaledToZero"}},
		{"reports going stale make a Warning", []metav1.Condition{fresh}, []metav1.Condition{staleC}, []string{"Warning/Stale"}},
		{"a change of reason alone makes no Event", []metav1.Condition{notReady}, []metav1.Condition{scaledDown}, nil},
		{"turning Unknown makes no Event", []metav1.Condition{fresh}, []metav1.Condition{awaiting}, nil},
		{"Available is told by Ready", []metav1.Condition{}, []metav1.Condition{available}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, tr := range conditionTransitions(tt.before, tt.after) {
				got = append(got, tr.eventType+"/"+tr.condition.Reason)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
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

func TestIsConflictMatchesOnlyForeignOwners(t *testing.T) {
	if !isConflict(errors.Join(errors.New("x"), &controllerutil.AlreadyOwnedError{Object: &appsv1.Deployment{}})) {
		t.Error("got false for a wrapped AlreadyOwnedError, want true")
	}
	if isConflict(errors.New("other")) || isConflict(nil) {
		t.Error("got true for another error, want false")
	}
}

// TestEveryReportedCounterReachesTheStatus fails when a field of
// report.Counters is not carried into RecordCounters under the same JSON
// name: adding a counter means adding it to statusCounters too.
func TestEveryReportedCounterReachesTheStatus(t *testing.T) {
	var in report.Counters
	v := reflect.ValueOf(&in).Elem()
	for i := range v.NumField() {
		switch f := v.Field(i); f.Kind() {
		case reflect.Uint64:
			f.SetUint(uint64(100 + i))
		case reflect.Int64:
			f.SetInt(int64(100 + i))
		case reflect.Struct: // time.Time
			f.Set(reflect.ValueOf(t0.Add(time.Duration(i) * time.Minute)))
		default:
			t.Fatalf("report.Counters.%s has kind %s: teach this test its value", v.Type().Field(i).Name, f.Kind())
		}
	}
	asMap := func(x any) map[string]any {
		data, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	reported, status := asMap(in), asMap(statusCounters(in))
	for name, want := range reported {
		got, ok := status[name]
		if !ok {
			t.Errorf("report field %q is missing from the status", name)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("report field %q: got %v in the status, want %v", name, got, want)
		}
	}
	for name := range status {
		if _, ok := reported[name]; !ok {
			t.Errorf("status counter %q comes from no report field", name)
		}
	}
}

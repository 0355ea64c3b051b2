package controllers

import (
	"errors"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/statusagg"
)

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

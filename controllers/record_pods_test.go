package controllers

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/statusagg"
)

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

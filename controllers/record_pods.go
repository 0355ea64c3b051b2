package controllers

// This file tells, for each buffer pod, whether its NATS link works. A
// report cannot say "disconnected": it travels on the very connection it
// would describe. So the manager judges by silence: a pod that runs and
// has not reported for longer than silentAfter of its report interval is
// not connected.
//
// A pod's interval is the one its latest report carries, not the
// manager's: after the report settings changed (a manager restarted with
// new flags), a pod keeps the old ones until the kubelet hands it the new
// settings file, and must not be judged by an interval it does not keep
// yet. Until then, a pod silent since the change may also be reporting
// under the old subject prefix, which the manager no longer hears: such a
// pod is not judged before settingsPropagation has passed since the change.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/statusagg"
)

// observePods reads the Record's buffer pods from the cache: its
// Deployment's, and the app pods it was injected into (from the cache of
// SidecarPods, when set). Both report, and count, alike.
func (r *RecordReconciler) observePods(ctx context.Context, s *recordScope) error {
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, client.InNamespace(s.record.Namespace), client.MatchingLabels(selectorLabels(s.record))); err != nil {
		return fmt.Errorf("listing the buffer pods of Record %s: %w", client.ObjectKeyFromObject(s.record), err)
	}
	s.pods, s.podsObserved = pods.Items, true
	if r.SidecarPods == nil {
		return nil
	}
	var apps corev1.PodList
	if err := r.SidecarPods.List(ctx, &apps, client.InNamespace(s.record.Namespace), client.MatchingLabels{recbufv1alpha1.LabelInject: "true"}); err != nil {
		s.podsObserved = false
		return fmt.Errorf("listing the app pods with sidecars of Record %s: %w", client.ObjectKeyFromObject(s.record), err)
	}
	for _, pod := range apps.Items {
		if _, ok := bufferpod.InjectedGenerations(&pod)[s.record.Name]; ok {
			s.sidecarPods = append(s.sidecarPods, pod)
		}
	}
	s.pods = append(s.pods, s.sidecarPods...)
	return nil
}

// silentAfter is how long a running pod may go without a report before it
// counts as disconnected: one interval and a half, so that one late report
// is not taken for an outage, while an outage shows within two intervals.
func silentAfter(interval time.Duration) time.Duration {
	interval = reportInterval(interval)
	return interval + interval/2
}

// reportInterval is interval, or the default when unset.
func reportInterval(interval time.Duration) time.Duration {
	if interval <= 0 {
		return report.DefaultInterval
	}
	return interval
}

// settingsPropagation bounds the time from a change of the Record's
// ConfigMap to the buffer processes applying it: the kubelet's sync period
// (one minute by default) and ConfigMap cache, plus the process's own poll
// (sidecar.DefaultSettingsPoll), with a margin.
const settingsPropagation = 2 * time.Minute

// podState is one buffer pod as the status shows it.
type podState struct {
	name string
	// connected: the pod reports. A running pod silent for silentAfter is
	// not connected.
	connected bool
	// counters are its latest fresh report's (zero without one).
	counters report.Counters
	// starting: running for less than silentAfter without a report yet;
	// not judged, and not listed in the status.
	starting bool
	// silentAt is when the pod goes silent unless it reports (zero when it
	// is silent already, or cannot be judged).
	silentAt time.Time
	// silentAfter is the silence it is judged by: silentAfter of its
	// report interval.
	silentAfter time.Duration
}

// judgePods joins the Record's running pods with their fresh reports,
// sorted by name:
//   - a pod with a fresh report is connected until silentAfter has passed
//     since that report; then it is silent, its last counters still
//     counted until the report goes stale;
//   - a running pod without a fresh report is silent once silentAfter has
//     passed since its container started (or since the manager connected,
//     as reports sent before that were missed); before, it is starting and
//     not listed;
//   - a pod that does not run (pending, or being deleted) but sent a
//     fresh report is connected: it reported, and is not judged silent;
//   - a report from a pod the cache does not show (one just deleted, or
//     anyone else's) counts for nothing: only the Record's current pods
//     may report for it (the collector refuses others as well; this is the
//     same rule where the status is made).
//   - the silence is measured against the interval of the pod's latest
//     report (the manager's own when it has none, or it carries none), and
//     a pod that ran before the report settings changed and has not
//     reported since is not silent before settingsPropagation has passed
//     since the change.
//
// While the manager itself is disconnected nothing is judged silent: it
// cannot hear anyone.
func judgePods(in statusInputs) []podState {
	reports := make(map[string]statusagg.PodReport, len(in.aggregate.PodReports))
	for _, p := range in.aggregate.PodReports {
		reports[p.Pod] = p
	}
	var out []podState
	for i := range in.pods {
		pod := &in.pods[i]
		started, running := bufferStarted(pod, in.record)
		rep, reported := reports[pod.Name]
		if !running {
			if reported {
				out = append(out, podState{name: pod.Name, connected: true, counters: rep.Counters})
			}
			continue
		}
		heard := started
		if reported && rep.Received.After(heard) {
			heard = rep.Received
		}
		if in.state.Since.After(heard) {
			heard = in.state.Since
		}
		interval := in.reportInterval
		if reported && rep.Interval > 0 {
			interval = rep.Interval
		}
		quiet := silentAfter(interval)
		silentAt := heard.Add(quiet)
		if changed := in.settingsChanged; started.Before(changed) && (!reported || rep.Received.Before(changed)) {
			silentAt = later(silentAt, changed.Add(settingsPropagation))
		}
		st := podState{name: pod.Name, counters: rep.Counters, silentAfter: quiet}
		switch {
		case !in.state.Connected:
			if !reported {
				continue
			}
			st.connected = true
		case in.now.Before(silentAt):
			st.connected, st.starting, st.silentAt = reported, !reported, silentAt
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b podState) int { return strings.Compare(a.name, b.name) })
	return out
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// bufferStarted says whether the pod's buffer container of the Record
// named record runs, and since when: the Deployment's container, or the
// sidecar injected into an app pod. A pod being deleted is draining, not
// expected to report.
func bufferStarted(pod *corev1.Pod, record string) (time.Time, bool) {
	if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning {
		return time.Time{}, false
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == bufferpod.ContainerName && cs.State.Running != nil {
			return cs.State.Running.StartedAt.Time, true
		}
	}
	for _, cs := range pod.Status.InitContainerStatuses {
		if cs.Name == bufferpod.InjectedContainerPrefix+record && cs.State.Running != nil {
			return cs.State.Running.StartedAt.Time, true
		}
	}
	return time.Time{}, false
}

// judgedPods are the pods that are not starting: the ones the status lists.
func judgedPods(pods []podState) []podState {
	return slices.DeleteFunc(slices.Clone(pods), func(p podState) bool { return p.starting })
}

// silentPods names the judged pods that are not connected, and the
// longest silence they were judged by.
func silentPods(pods []podState) (names []string, after time.Duration) {
	for _, p := range judgedPods(pods) {
		if !p.connected {
			names = append(names, p.name)
			after = max(after, p.silentAfter)
		}
	}
	return names, after
}

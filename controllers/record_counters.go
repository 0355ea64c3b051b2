package controllers

// This file carries the counters from the reports into the status.

import (
	"math"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/statusagg"
)

// setCounters copies the aggregate's sums and the pods' detail into the
// status when they changed; with no fresh report the sums keep their last
// values. lastReportTime moves only with them: an idle Record's identical
// reports cause no status write.
func setCounters(rec *recbufv1alpha1.Record, in statusInputs, pods []podState) {
	st := &rec.Status
	a := in.aggregate
	if a.Pods == 0 {
		st.ReportingPods = 0
		st.Pods = podStatuses(pods)
		return
	}
	next := *st
	next.ReportingPods = int32(min(a.Pods, math.MaxInt32))
	next.RecordCounters = statusCounters(recordCounters(rec, a.PodReports))
	next.Pods = podStatuses(pods)
	if equality.Semantic.DeepEqual(*st, next) {
		return
	}
	next.LastReportTime = metaTime(a.LastReport)
	*st = next
}

// recordCounters are the Record's counters from its pods' fresh reports:
// what a person looking at the Record means by them, however many copies
// of it run.
//
// Without a queue group, every buffer pod (of the Record's Deployment or
// an app's pod it is injected into) holds a whole copy of the Record and
// takes in every value. What happens to the values themselves (produced,
// dropped, evicted, overwrites, lastMessageTime) is then the most any copy
// counts: their sum would count each value once per copy. With a queue
// group the pods split the values between them, and those add up. What
// consumers do (delivered, subscribers, lagEvents, laggedValues, skipped)
// happens on the one pod each consumer reads from, and adds up either way.
// status.pods keeps each pod's own figures.
func recordCounters(rec *recbufv1alpha1.Record, pods []statusagg.PodReport) report.Counters {
	var sum report.Counters
	for _, p := range pods {
		sum = sum.Add(p.Counters)
	}
	if s := rec.Spec.Source; s != nil && s.NATS.QueueGroup != "" {
		return sum
	}
	sum.Produced, sum.Dropped, sum.Evicted, sum.Overwrites = 0, 0, 0, 0
	for _, p := range pods {
		sum.Produced = max(sum.Produced, p.Counters.Produced)
		sum.Dropped = max(sum.Dropped, p.Counters.Dropped)
		sum.Evicted = max(sum.Evicted, p.Counters.Evicted)
		sum.Overwrites = max(sum.Overwrites, p.Counters.Overwrites)
	}
	return sum
}

// statusCounters is the one conversion of the counters from what the
// buffer processes report to the API's.
func statusCounters(c report.Counters) recbufv1alpha1.RecordCounters {
	return recbufv1alpha1.RecordCounters{
		Produced:        sat(c.Produced),
		Delivered:       sat(c.Delivered),
		Subscribers:     c.Subscribers,
		LagEvents:       sat(c.LagEvents),
		LaggedValues:    sat(c.LaggedValues),
		Skipped:         sat(c.Skipped),
		Overwrites:      sat(c.Overwrites),
		Evicted:         sat(c.Evicted),
		Dropped:         sat(c.Dropped),
		LastMessageTime: metaTime(c.LastMessageTime),
	}
}

// podStatuses is the per-pod detail of the status: the pods as judged
// (sorted by name), at most MaxPodStatuses of them.
func podStatuses(pods []podState) []recbufv1alpha1.RecordPodStatus {
	pods = judgedPods(pods)
	if len(pods) == 0 {
		return nil
	}
	pods = pods[:min(len(pods), recbufv1alpha1.MaxPodStatuses)]
	out := make([]recbufv1alpha1.RecordPodStatus, len(pods))
	for i, p := range pods {
		c := statusCounters(p.counters)
		out[i] = recbufv1alpha1.RecordPodStatus{
			Name:        p.name,
			Connected:   p.connected,
			Produced:    c.Produced,
			Subscribers: c.Subscribers,
			Dropped:     c.Dropped,
		}
	}
	return out
}

// metaTime is t at the precision the API stores (seconds); nil for zero.
func metaTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return ptr.To(metav1.NewTime(t.Truncate(time.Second)))
}

// sat converts a counter to the API's int64, saturating.
func sat(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}

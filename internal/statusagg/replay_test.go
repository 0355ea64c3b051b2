package statusagg

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/internal/testutil/poll"
)

// repAt is rep taken at t by the pod's clock.
func repAt(key types.NamespacedName, pod string, produced uint64, t time.Time) report.Report {
	r := rep(key, "u", pod, produced)
	r.Time = t
	return r
}

// TestACapturedReportReplayedLaterIsRefused is the attack: a signed
// report captured off NATS and sent again 31 s, 62 s and 93 s after it was
// taken, each time once the pod's entry has gone stale (StaleAfter 30 s).
// Each replay is refused as out of the manager's clock, counted, and keeps
// the pod out of the aggregate.
func TestACapturedReportReplayedLaterIsRefused(t *testing.T) {
	srv := natstest.Start(t)
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	c := startCollector(t, Options{URL: srv.URL(), StaleAfter: 30 * time.Second}, clock)
	nc := srv.Connect()
	poll.Until(t, "the collector to connect", func() bool { return c.State().Connected })

	captured := repAt(recA, "p", 1, clock.now())
	publish(t, nc, captured)
	poll.Until(t, "the genuine report", func() bool { return c.Aggregate(recA, "u").Pods == 1 })

	for _, after := range []time.Duration{31 * time.Second, 62 * time.Second, 93 * time.Second} {
		t.Run(fmt.Sprintf("a replay %s after capture is refused", after), func(t *testing.T) {
			clock.set(time.Unix(1_000_000, 0).Add(after))
			waitGone(t, c, recA, "p")
			before := rejections(t, RejectClockSkew)
			publish(t, nc, captured)
			poll.Until(t, "the replay counted", func() bool { return rejections(t, RejectClockSkew) == before+1 })
			if a := c.Aggregate(recA, "u"); a.Pods != 0 {
				t.Errorf("got aggregate %+v after the replay, want the stale pod left out", a)
			}
		})
	}
}

func (f *fakeClock) set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = t
}

// waitGone waits until tick has forgotten pod's entry of key.
func waitGone(t *testing.T, c *Collector, key types.NamespacedName, pod string) {
	t.Helper()
	poll.Until(t, "the stale entry forgotten", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		e := c.records[key]
		if e == nil {
			return true
		}
		_, ok := e.pods[pod]
		return !ok
	})
}

// TestAReportsTimeMustBeWithinTheClockSkewOfTheManagers: a report taken
// further from the manager's clock than MaxClockSkew, either way, is
// refused; within it, accepted. Each case reports for a pod of its own, so
// the high-water marks do not mix.
func TestAReportsTimeMustBeWithinTheClockSkewOfTheManagers(t *testing.T) {
	srv := natstest.Start(t)
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	c := startCollector(t, Options{URL: srv.URL(), StaleAfter: time.Hour, MaxClockSkew: 10 * time.Second}, clock)
	nc := srv.Connect()
	poll.Until(t, "the collector to connect", func() bool { return c.State().Connected })

	tests := []struct {
		name   string
		offset time.Duration // report time minus the manager's clock
		ok     bool
	}{
		{"a report taken now is accepted", 0, true},
		{"a report taken as long ago as the skew is accepted", -10 * time.Second, true},
		{"a report from a clock as far ahead as the skew is accepted", 10 * time.Second, true},
		{"a report taken longer ago than the skew is refused", -10*time.Second - time.Millisecond, false},
		{"a report from a clock further ahead than the skew is refused", 10*time.Second + time.Millisecond, false},
		{"a report without a time is refused", 0, false},
	}
	var pods []string
	for i := range tests {
		pods = append(pods, fmt.Sprintf("pod-%d", i))
	}
	c.Admit(recA, Identity{UID: "u", Key: testKey, Pods: pods})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := repAt(recA, pods[i], uint64(i+1), clock.now().Add(tt.offset))
			if tt.name == "a report without a time is refused" {
				r.Time = time.Time{}
			}
			before := rejections(t, RejectClockSkew)
			publish(t, nc, r)
			if tt.ok {
				poll.Until(t, "the report kept", func() bool { return hasPod(c.Aggregate(recA, "u"), pods[i]) })
				return
			}
			poll.Until(t, "the refusal counted", func() bool { return rejections(t, RejectClockSkew) == before+1 })
			if hasPod(c.Aggregate(recA, "u"), pods[i]) {
				t.Errorf("got %s in the aggregate, want its report refused", pods[i])
			}
		})
	}
}

func hasPod(a Aggregate, pod string) bool {
	for _, p := range a.PodReports {
		if p.Pod == pod {
			return true
		}
	}
	return false
}

// TestAPodsHighWaterMarkOutlivesItsStaleEntry: a report replayed within
// the clock skew, after the pod's entry went stale, is still no newer than
// the pod's last, and refused; a newer one is accepted again.
func TestAPodsHighWaterMarkOutlivesItsStaleEntry(t *testing.T) {
	srv := natstest.Start(t)
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	c := startCollector(t, Options{URL: srv.URL(), StaleAfter: 2 * time.Second, MaxClockSkew: time.Minute}, clock)
	nc := srv.Connect()
	poll.Until(t, "the collector to connect", func() bool { return c.State().Connected })

	captured := repAt(recA, "p", 1, clock.now())
	publish(t, nc, captured)
	poll.Until(t, "the genuine report", func() bool { return c.Aggregate(recA, "u").Pods == 1 })
	clock.advance(3 * time.Second)
	waitGone(t, c, recA, "p")

	before := rejections(t, RejectReplayed)
	publish(t, nc, captured)
	poll.Until(t, "the replay counted", func() bool { return rejections(t, RejectReplayed) == before+1 })
	if a := c.Aggregate(recA, "u"); a.Pods != 0 {
		t.Errorf("got aggregate %+v after the replay, want the stale pod left out", a)
	}

	publish(t, nc, repAt(recA, "p", 2, clock.now()))
	poll.Until(t, "the pod's next report", func() bool { return c.Aggregate(recA, "u").Counters.Produced == 2 })
}

// TestHighWaterMarksAreForgottenWithTheirPods: the marks are bounded by
// the admitted Records' current pods, like the reports.
func TestHighWaterMarksAreForgottenWithTheirPods(t *testing.T) {
	srv := natstest.Start(t)
	c := startCollector(t, Options{URL: srv.URL(), StaleAfter: time.Hour}, nil)
	nc := srv.Connect()
	poll.Until(t, "the collector to connect", func() bool { return c.State().Connected })

	publish(t, nc, rep(recA, "u", "p1", 1))
	publish(t, nc, rep(recA, "u", "p2", 2))
	publish(t, nc, rep(recB, "u", "p1", 1))
	poll.Until(t, "three reports", func() bool {
		return c.Aggregate(recA, "u").Pods == 2 && c.Aggregate(recB, "u").Pods == 1
	})
	marks := func(key types.NamespacedName) []string {
		c.mu.Lock()
		defer c.mu.Unlock()
		var pods []string
		for p := range c.highWater[key] {
			pods = append(pods, p)
		}
		return pods
	}

	c.Admit(recA, Identity{UID: "u", Key: testKey, Pods: []string{"p2"}})
	if got := marks(recA); len(got) != 1 || got[0] != "p2" {
		t.Errorf("got marks %q after p1 left, want p2's alone", got)
	}
	c.Admit(recA, Identity{UID: "u2", Key: testKey, Pods: []string{"p2"}})
	if got := marks(recA); len(got) != 0 {
		t.Errorf("got marks %q for a new incarnation, want none", got)
	}
	c.Forget(recB)
	c.mu.Lock()
	_, kept := c.highWater[recB]
	c.mu.Unlock()
	if kept {
		t.Error("got marks of a forgotten Record, want none")
	}
}

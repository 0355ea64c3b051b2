package sidecar_test

import "testing"

func TestTheIntakeQueueIsBoundedAndVisible(t *testing.T) {
	ns := natsServer(t)
	sc := start(t, testConfig(ns.URL(), ring("q", 8)))
	// The default 1 MiB messages: 32768 messages, 32 MiB (sizing.PendingLimits).
	for name, want := range map[string]float64{
		"recbuf_intake_pending_limit_messages": 32768,
		"recbuf_intake_pending_limit_bytes":    32 << 20,
		"recbuf_intake_pending_messages":       0,
		"recbuf_intake_pending_bytes":          0,
	} {
		if got := sc.metric(t, name+`{namespace="ns",record="q"}`); got != want {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
}

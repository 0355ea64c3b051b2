package sidecar_test

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/onsi/gomega"

	"github.com/recbuf/recbuf/internal/sidecar"
)

func TestARingWithAByteBudgetEvictsForBytesAndSaysSo(t *testing.T) {
	ns := natsServer(t)
	rc := ring("budget", 100)
	rc.MaxBytes = 4096
	cfg := testConfig(ns.URL(), rc)
	cfg.MaxMessageBytes = 1024
	sc := start(t, cfg)
	pub := ns.Connect()
	pad := strings.Repeat("x", 997)
	publish(t, pub, "in.budget", pad, 100, 109) // ten values of 1000 bytes: four fit in 4096
	metric := func(name string) func() float64 {
		return func() float64 { return sc.metric(t, name+`{namespace="ns",record="budget"}`) }
	}
	eventually(t, metric("recbuf_buffer_produced_total")).Should(gomega.Equal(10.0))
	for name, want := range map[string]float64{
		"recbuf_buffer_occupancy":     4,
		"recbuf_buffer_evicted_total": 6,
		"recbuf_buffer_bytes":         4000,
		"recbuf_buffer_max_bytes":     4096,
	} {
		if got := metric(name)(); got != want {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
}

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

func TestTheGoMemoryLimitIsNinetyPercentOfTheContainers(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	noEnv := func(string) string { return "" }

	limit, set := sidecar.SetGoMemoryLimit(sidecar.Config{MemoryLimit: 1000 << 20}, noEnv)
	if want := int64(1000<<20) / 100 * 90; !set || limit != want || debug.SetMemoryLimit(-1) != want {
		t.Errorf("with a 1000 MiB container limit: got (%d, %v) and a Go limit of %d, want %d set", limit, set, debug.SetMemoryLimit(-1), want)
	}

	debug.SetMemoryLimit(prev)
	gomemlimit := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "123MiB"
		}
		return ""
	}
	if limit, set := sidecar.SetGoMemoryLimit(sidecar.Config{MemoryLimit: 1000 << 20}, gomemlimit); set || limit != prev {
		t.Errorf("with GOMEMLIMIT set: got (%d, %v), want the runtime's limit %d left alone", limit, set, prev)
	}
	if limit, set := sidecar.SetGoMemoryLimit(sidecar.Config{}, noEnv); set || limit != prev {
		t.Errorf("without a container limit: got (%d, %v), want the runtime's limit %d left alone", limit, set, prev)
	}
}

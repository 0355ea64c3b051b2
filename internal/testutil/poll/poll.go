package poll

import (
	"testing"
	"time"
)

// Timeout is how long Until waits: generous, so that a slow, shared CI
// machine does not turn into a flaky test; a passing test never waits it out.
const Timeout = 30 * time.Second

// Polling starts at minInterval and doubles up to maxInterval: a condition
// that is nearly true is seen within microseconds (benchmarks time what
// they wait for), one that takes long costs little CPU.
const (
	minInterval = 20 * time.Microsecond
	maxInterval = time.Millisecond
)

// Until returns once cond holds, and fails tb with "timed out waiting until
// <what>" if it does not within Timeout. cond is called from the calling
// goroutine, first at once.
func Until(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	UntilWithin(tb, Timeout, what, cond)
}

// UntilWithin is Until with a timeout of its own.
func UntilWithin(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	interval := minInterval
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(interval)
		interval = min(2*interval, maxInterval)
	}
}

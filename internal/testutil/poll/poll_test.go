package poll_test

import (
	"strings"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/testutil/poll"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	poll.Until(t, "the condition was asked three times", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Fatalf("calls: got %d, want 3", calls)
	}
}

// recorder is a testing.TB that records a Fatalf instead of ending the test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	_ = args
}

func TestUntilWithinFailsTheTestAfterItsTimeout(t *testing.T) {
	rec := &recorder{TB: t}
	start := time.Now()
	calls := 0
	poll.UntilWithin(rec, 20*time.Millisecond, "never", func() bool {
		calls++
		// Fatalf on a real TB stops the goroutine; the recorder does not,
		// so end the loop once it has reported.
		return rec.failed != ""
	})
	if !strings.Contains(rec.failed, "timed out") {
		t.Fatalf("failure: got %q, want a timeout", rec.failed)
	}
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Fatalf("waited %v, want at least the 20ms timeout", waited)
	}
	if calls < 2 {
		t.Fatalf("calls: got %d, want the condition polled more than once", calls)
	}
}

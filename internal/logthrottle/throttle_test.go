package logthrottle_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/logthrottle"
)

// clock is a fake time source that tests move by hand; safe for
// concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// step is one call in a test: advance the clock by after, then call op
// and compare its result (Add returns nothing to compare).
type step struct {
	after  time.Duration
	op     string // "allow", "add" or "flush"
	wantN  uint64
	wantOK bool
}

func TestThrottle(t *testing.T) {
	const interval = 10 * time.Second
	tests := []struct {
		name     string
		interval time.Duration
		steps    []step
	}{
		{"the first event is logged at once", interval, []step{
			{op: "allow", wantN: 1, wantOK: true},
		}},
		{"events within the interval are suppressed and counted into the next line", interval, []step{
			{op: "allow", wantN: 1, wantOK: true},
			{after: time.Second, op: "allow"},
			{after: time.Second, op: "allow"},
			{after: 8 * time.Second, op: "allow", wantN: 3, wantOK: true},
		}},
		{"an event long after the last line is logged at once, alone", interval, []step{
			{op: "allow", wantN: 1, wantOK: true},
			{after: time.Hour, op: "allow", wantN: 1, wantOK: true},
		}},
		{"the interval counts from the last line, not from the last event", interval, []step{
			{op: "allow", wantN: 1, wantOK: true},
			{after: 9 * time.Second, op: "allow"},
			{after: time.Second, op: "allow", wantN: 2, wantOK: true},
		}},
		{"flush without events has nothing to log", interval, []step{
			{op: "flush"},
			{op: "allow", wantN: 1, wantOK: true},
			{after: time.Hour, op: "flush"},
		}},
		{"flush logs counted events at once when no line was logged yet", interval, []step{
			{op: "add"},
			{op: "add"},
			{op: "flush", wantN: 2, wantOK: true},
		}},
		{"flush waits for the interval, then logs what was suppressed", interval, []step{
			{op: "allow", wantN: 1, wantOK: true},
			{after: time.Second, op: "allow"},
			{after: time.Second, op: "add"},
			{after: time.Second, op: "flush"},
			{after: 7 * time.Second, op: "flush", wantN: 2, wantOK: true},
			{op: "flush"},
		}},
		{"a zero interval logs every event", 0, []step{
			{op: "allow", wantN: 1, wantOK: true},
			{op: "allow", wantN: 1, wantOK: true},
			{op: "add"},
			{op: "flush", wantN: 1, wantOK: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			th := logthrottle.New(tt.interval, c.now)
			for i, s := range tt.steps {
				c.advance(s.after)
				var n uint64
				var ok bool
				switch s.op {
				case "allow":
					n, ok = th.Allow()
				case "add":
					th.Add()
					continue
				case "flush":
					n, ok = th.Flush()
				default:
					t.Fatalf("step %d: unknown op %q", i, s.op)
				}
				if n != s.wantN || ok != s.wantOK {
					t.Errorf("step %d (%s after %s): got (%d, %v), want (%d, %v)", i, s.op, s.after, n, ok, s.wantN, s.wantOK)
				}
			}
		})
	}
}

func TestTheZeroThrottleLogsEveryEvent(t *testing.T) {
	var th logthrottle.Throttle
	for i := range 3 {
		if n, ok := th.Allow(); n != 1 || !ok {
			t.Fatalf("event %d: got (%d, %v), want (1, true)", i, n, ok)
		}
	}
}

// TestEveryEventIsCountedOnceUnderConcurrency has many goroutines report
// events while the clock moves: the lines allowed, plus a final flush,
// account for every event exactly once.
func TestEveryEventIsCountedOnceUnderConcurrency(t *testing.T) {
	const goroutines, events = 8, 2000
	c := newClock()
	th := logthrottle.New(time.Millisecond, c.now)
	var logged atomic.Uint64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range events {
				if g == 0 && i%10 == 0 {
					c.advance(time.Millisecond)
				}
				if (g+i)%3 == 0 {
					th.Add()
					continue
				}
				if n, ok := th.Allow(); ok {
					logged.Add(n)
				}
			}
		})
	}
	wg.Wait()
	c.advance(time.Hour)
	if n, ok := th.Flush(); ok {
		logged.Add(n)
	}
	if got, want := logged.Load(), uint64(goroutines*events); got != want {
		t.Errorf("got %d events in log lines, want %d", got, want)
	}
}

func ExampleThrottle() {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := start
	th := logthrottle.New(10*time.Second, func() time.Time { return now })
	for _, at := range []time.Duration{0, time.Second, 2 * time.Second, 12 * time.Second} {
		now = start.Add(at)
		if n, ok := th.Allow(); ok {
			fmt.Printf("at %s: log a line for %d dropped\n", at, n)
		}
	}
	// Output:
	// at 0s: log a line for 1 dropped
	// at 12s: log a line for 3 dropped
}

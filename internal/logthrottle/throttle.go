package logthrottle

import (
	"sync"
	"time"
)

// Throttle counts events and allows a log line about them at most once per
// interval. The zero Throttle allows a line for every event. A Throttle
// must not be copied after first use.
type Throttle struct {
	interval time.Duration
	now      func() time.Time

	mu sync.Mutex
	// logged is set once a line was allowed, last is when.
	logged bool
	last   time.Time
	// pending counts the events since then that no line has covered yet.
	pending uint64
}

// New returns a Throttle that allows a line at most once per interval
// (<= 0: every time), reading the time from now (nil: time.Now).
func New(interval time.Duration, now func() time.Time) *Throttle {
	return &Throttle{interval: interval, now: now}
}

// Allow counts one event and reports whether to log it now: ok for the
// first event, and for the first one after an interval has passed since
// the last line. n is the number of events the line stands for: this one
// and those suppressed since the last line.
func (t *Throttle) Allow() (n uint64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending++
	return t.flushLocked()
}

// Add counts one event without logging it; the next Allow or Flush that
// allows a line includes it.
func (t *Throttle) Add() {
	t.mu.Lock()
	t.pending++
	t.mu.Unlock()
}

// Flush reports whether a line is due for the events counted but not yet
// logged: ok when there is at least one and the interval since the last
// line has passed (or there was none). n is their number.
func (t *Throttle) Flush() (n uint64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.flushLocked()
}

func (t *Throttle) flushLocked() (uint64, bool) {
	if t.pending == 0 {
		return 0, false
	}
	now := t.clock()
	if t.logged && now.Sub(t.last) < t.interval {
		return 0, false
	}
	n := t.pending
	t.pending, t.logged, t.last = 0, true, now
	return n, true
}

func (t *Throttle) clock() time.Time {
	if t.now == nil {
		return time.Now()
	}
	return t.now()
}

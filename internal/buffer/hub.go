package buffer

import (
	"context"
	"sync"
	"sync/atomic"
)

// readerCore is the part of a reader that the buffer and other goroutines
// touch: everything else in a reader belongs to the goroutine calling Recv.
type readerCore struct {
	// notify carries at most one pending wake-up. It is allocated once at
	// Subscribe so that waking a parked reader never allocates; a send to it
	// never blocks (see signal).
	notify chan struct{}
	// closed is set by Reader.Close.
	closed atomic.Bool
	// delivered counts values this reader received. Per reader rather than
	// per buffer so that readers on different cores do not fight over one
	// cache line on every receive. Close sets its retiredBit when it folds
	// the count into the buffer's (see hub.handOut).
	delivered atomic.Uint64
	// parked is true while the reader is in its buffer's wait list; it is
	// guarded by waitList.mu.
	parked bool
}

// retiredBit marks a reader's delivered counter as folded into its
// buffer's retired sum by Close. Counts never come near it.
const retiredBit = 1 << 63

func newReaderCore() readerCore {
	return readerCore{notify: make(chan struct{}, 1)}
}

// signal leaves a wake-up for the reader without ever blocking: if one is
// already pending the reader will look at the buffer anyway.
func (rc *readerCore) signal() {
	select {
	case rc.notify <- struct{}{}:
	default:
	}
}

// drain drops a stale wake-up, so that the next wait blocks until a change
// that happens after this call.
func (rc *readerCore) drain() {
	select {
	case <-rc.notify:
	default:
	}
}

// waitList holds the readers parked in Recv. A producer pays one atomic load
// when nobody waits; only when n > 0 does it take the lock and signal.
//
// No wake-up is lost: a reader adds itself (storing n) before it looks at
// the buffer a last time, and a producer publishes a value before it loads
// n. Go's atomics and mutexes are sequentially consistent, so either the
// reader's last look sees the value, or the producer sees n > 0.
type waitList struct {
	n  atomic.Int32
	mu sync.Mutex
	rs []*readerCore
}

func (w *waitList) add(rc *readerCore) {
	w.mu.Lock()
	if !rc.parked {
		rc.parked = true
		w.rs = append(w.rs, rc)
		w.n.Store(int32(len(w.rs)))
	}
	w.mu.Unlock()
}

func (w *waitList) remove(rc *readerCore) {
	w.mu.Lock()
	if rc.parked {
		rc.parked = false
		for i, x := range w.rs {
			if x == rc {
				last := len(w.rs) - 1
				w.rs[i] = w.rs[last]
				w.rs[last] = nil
				w.rs = w.rs[:last]
				break
			}
		}
		w.n.Store(int32(len(w.rs)))
	}
	w.mu.Unlock()
}

// wakeAll signals every parked reader and empties the list; readers that
// still find nothing park again. The list keeps its backing array, so the
// steady state does not allocate.
func (w *waitList) wakeAll() {
	if w.n.Load() == 0 {
		return
	}
	w.mu.Lock()
	for i, rc := range w.rs {
		rc.parked = false
		rc.signal()
		w.rs[i] = nil
	}
	w.rs = w.rs[:0]
	w.n.Store(0)
	w.mu.Unlock()
}

// hub is what the three buffer types share: the closed flag, the wait list,
// the set of subscribers and the counters that are not type specific.
type hub struct {
	closed  atomic.Bool
	waiters waitList

	smu  sync.Mutex // guards subs
	subs map[*readerCore]struct{}
	// nsubs mirrors len(subs) so Stats can read it without the lock.
	nsubs atomic.Int64
	// retired sums the delivered counters of readers that were closed.
	retired atomic.Uint64

	// testHookParked, if set, runs in park between joining the wait list
	// and the last look at the buffer; tests use it to force interleavings.
	testHookParked func()
	// testHookHandOut, if set, runs in a receive between taking a value
	// and counting it; tests use it to close the reader in that window.
	testHookHandOut func()

	lagEvents    atomic.Uint64
	laggedValues atomic.Uint64
	skipped      atomic.Uint64
	overwrites   atomic.Uint64
	// gaps counts the sequence numbers PushSeq skipped: the values the
	// numbering says exist but that never reached this buffer. Produced
	// is the newest sequence number less gaps.
	gaps atomic.Uint64
}

func (h *hub) register(rc *readerCore) error {
	h.smu.Lock()
	defer h.smu.Unlock()
	if h.closed.Load() {
		return ErrClosed
	}
	if h.subs == nil {
		h.subs = make(map[*readerCore]struct{})
	}
	h.subs[rc] = struct{}{}
	h.nsubs.Add(1)
	return nil
}

// unregister implements Reader.Close: it marks the reader closed, wakes a
// Recv parked on it and forgets it, folding its counter into retired.
func (h *hub) unregister(rc *readerCore) {
	if rc.closed.Swap(true) {
		return
	}
	rc.signal()
	h.waiters.remove(rc)
	h.smu.Lock()
	if _, ok := h.subs[rc]; ok {
		delete(h.subs, rc)
		h.nsubs.Add(-1)
		h.retired.Add(rc.delivered.Or(retiredBit) &^ retiredBit)
	}
	h.smu.Unlock()
}

// close marks the buffer closed and wakes every reader, parked or not, so
// that each one drains what its type still lets it receive and then sees
// ErrClosed. It reports false when the buffer was already closed.
func (h *hub) close() bool {
	h.smu.Lock()
	defer h.smu.Unlock()
	if h.closed.Swap(true) {
		return false
	}
	for rc := range h.subs {
		rc.signal()
	}
	return true
}

// delivered sums the per-reader counters. It locks out Subscribe and
// Reader.Close for a moment, never Push or Recv.
func (h *hub) delivered() uint64 {
	h.smu.Lock()
	defer h.smu.Unlock()
	n := h.retired.Load()
	for rc := range h.subs {
		n += rc.delivered.Load() &^ retiredBit
	}
	return n
}

// handOut counts a value that rc's receive is handing out. Close may run
// on another goroutine between the receive's take and this count, and fold
// the reader's counter before it: the count is then the buffer's to keep.
// The fold and the add are each one atomic step on the same word, so every
// value is counted exactly once, on one side or the other.
func (h *hub) handOut(rc *readerCore) {
	if h.testHookHandOut != nil {
		h.testHookHandOut()
	}
	if rc.delivered.Add(1)&retiredBit != 0 {
		h.retired.Add(1)
	}
}

// stats fills the counters every type shares.
func (h *hub) stats(t Type) Stats {
	return Stats{
		Type:         t,
		Delivered:    h.delivered(),
		LagEvents:    h.lagEvents.Load(),
		LaggedValues: h.laggedValues.Load(),
		Skipped:      h.skipped.Load(),
		Overwrites:   h.overwrites.Load(),
		Subscribers:  int(h.nsubs.Load()),
	}
}

// readier is implemented by the three readers: ready reports, without
// consuming anything, whether a receive would now return something other
// than "nothing yet" (a value, a lag, or closed).
type readier interface {
	ready() bool
}

// park is the slow path of Recv, shared by the three reader types: it waits
// until the reader may have something to receive (a producer pushed, the
// buffer or the reader was closed) or ctx is done. Wake-ups may be
// spurious; the caller looks again and parks again if need be.
//
// The order matters. Stale wake-ups are dropped before the reader joins
// the wait list, never after: once it is in the list, a producer may take
// it out and signal it at any moment, possibly for a value the reader has
// already read, and dropping that signal would leave the reader waiting
// outside the list, where no later push would find it.
func (h *hub) park(ctx context.Context, rc *readerCore, r readier) error {
	rc.drain()
	h.waiters.add(rc)
	if h.testHookParked != nil {
		h.testHookParked()
	}
	if r.ready() {
		h.waiters.remove(rc)
		return nil
	}
	select {
	case <-rc.notify:
		h.waiters.remove(rc) // a no-op when a producer already took us out
		return nil
	case <-ctx.Done():
		h.waiters.remove(rc)
		return ctx.Err()
	}
}

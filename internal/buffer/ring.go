package buffer

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// SpmcRing is a bounded broadcast ring: every reader sees every value,
// in order, unless it falls more than the capacity behind, in which case it
// is told exactly how many values it missed and reads on from the oldest one
// still retained.
//
// Value number s (sequence numbers start at 1) lives in slot (s-1) mod N.
// Each slot remembers the sequence number of the value it holds, which is
// all a reader needs to tell "not yet written", "mine" and "overwritten".
// A ring of capacity N = 5 after 7 pushes:
//
//	slot:     0     1     2     3     4
//	       +-----+-----+-----+-----+-----+
//	seq:   |  6  |  7  |  3  |  4  |  5  |
//	       +-----+-----+-----+-----+-----+
//	                ^     ^
//	           newest     oldest retained (7-5+1 = 3)
//
// A reader whose cursor is 8 looks at slot 2, finds seq 3 < 8: nothing new
// yet, it waits. A reader whose cursor is 3 finds seq 3: it reads it and
// moves to 4.
//
// The lag case. A slow reader has cursor 2 and the producer has pushed
// 3 more values (8, 9, 10) into the same ring:
//
//	slot:     0     1     2     3     4
//	       +-----+-----+-----+-----+-----+
//	seq:   |  6  |  7  |  8  |  9  | 10  |
//	       +-----+-----+-----+-----+-----+
//	                ^                 ^
//	          slot of seq 2         newest
//
// The reader looks at slot 1 for seq 2 and finds 7 > 2: its value was
// overwritten. The oldest retained value is 10-5+1 = 6, so it missed
// exactly 6-2 = 4 values (2, 3, 4, 5): it gets a *LaggedError{Missed: 4},
// its cursor jumps to 6, and its next receive returns 6 (unless the
// producer overwrote that one too in the meantime, which is a new lag).
//
// # A byte budget
//
// With WithMaxBytes, the ring also holds at most maxBytes bytes of values.
// The count alone no longer says which values are retained, so the ring
// keeps head, the oldest retained sequence number, and a push that would
// go over the budget evicts from head until the new value fits: it moves
// head forward first, then clears each evicted slot (seq 0, value zeroed,
// so that the garbage collector can free it at once). The same ring of 5,
// with a budget of 10 bytes, after pushes of 3, 4, 2 and 5 bytes:
//
//	slot:     0     1     2     3     4
//	       +-----+-----+-----+-----+-----+
//	seq:   |  0  |  0  |  3  |  4  |  0  |
//	bytes: |     |     |  2  |  5  |     |
//	       +-----+-----+-----+-----+-----+
//	                      ^     ^
//	                   head     newest
//
// Value 4 (5 bytes) made 14 bytes: 1 (3 bytes) went; still 11: 2 went too.
// A reader whose cursor is 1 finds slot 0 cleared, seq 0 < 1, which alone
// would mean "not yet"; so before waiting it compares its cursor with head:
// 1 < 3, it lagged by exactly 3-1 = 2. A reader whose cursor is 5 (up to
// date) finds the cleared slot 4 and head 3 <= 5: it waits, as it should.
// Head moves before the slot is cleared, and the reader reads head after
// the slot, under the slot's lock, so a reader that sees a cleared slot
// sees the head that explains it. A value larger than the whole budget is
// refused (*TooLargeError) rather than evicting everything for it.
//
// # Sequence numbers from a stream
//
// With WithExternalSeq, the caller numbers the values (PushSeq), as a
// durable stream does, and numbers may be skipped where the stream deleted
// messages. The ring keeps head as with a byte budget, and a skipped number
// that falls inside the window gets its slot marked as a hole (h): a reader
// that reaches a hole is told it lagged by the run of holes it stands
// before, exactly as if those values had been evicted. The same ring of 5
// after values 3, 4 and 7 (5 and 6 were deleted from the stream):
//
//	slot:     0     1     2     3     4
//	       +-----+-----+-----+-----+-----+
//	seq:   | 6h  |  7  |  3  |  4  | 5h  |
//	       +-----+-----+-----+-----+-----+
//	                ^     ^
//	           newest     head
//
// A reader whose cursor is 5 finds the hole, skips it and the one of 6 and
// gets a *LaggedError{Missed: 2}, then reads 7. The ring writes the value
// first and then the holes before it, newest first, so a reader waiting at
// the first hole finds the whole run once it finds that one. head never
// rests on a hole: it moves past holes as it moves past evicted values, so
// a reader that jumps to head lands on a value. The first value pushed,
// numbered S, makes head S: the S-1 values before it are as good as evicted.
//
// Pushes to a ring with a budget are serialised by the budget's mutex,
// since the evictions must see the sizes in order. A ring without a budget
// pays one nil check for it in Push and, for holes, one look at a flag of
// the slot in a receive that finds its value.
//
// Each slot has its own mutex, held only while a value is copied in or out,
// so a reader contends with the producer only when both touch the same
// slot, and readers of different slots never contend. Push never waits for
// a reader to receive; the one thing it can wait for is a reader copying a
// value out of the very slot Push is about to overwrite, which takes
// nanoseconds and happens only to a reader a whole lap behind. Push is safe
// for concurrent use (sequence numbers come from one atomic counter and a
// push never overwrites a newer value), though one producer is the
// intended use.
//
// The zero SpmcRing is not usable: create one with NewSpmcRing. A SpmcRing
// must not be copied after first use.
type SpmcRing[T any] struct {
	hub
	slots []ringSlot[T]
	// tail is the sequence number last handed to a Push: LastSeq and
	// Produced. The value may still be on its way into its slot.
	tail atomic.Uint64
	// budget is nil for a ring bounded by its capacity only.
	budget *byteBudget[T]
}

// byteBudget is the state of a ring's byte budget. head and bytes are
// written under mu, by Push, and read without it by readers and Stats.
type byteBudget[T any] struct {
	max  int64
	size func(T) int64

	mu sync.Mutex
	// sizes[i] is the size of the value in slot i while it is retained.
	sizes []int64
	// used is the sum of the retained values' sizes (guarded by mu);
	// bytes mirrors it for Stats.
	used  int64
	bytes atomic.Int64
	// head is the oldest retained sequence number (1 before any push).
	head atomic.Uint64

	// external says the caller numbers the values (WithExternalSeq); hole
	// and holes are for it only. hole[i] says slot i stands for a skipped
	// number inside the window, holes counts them (both guarded by mu),
	// nholes mirrors holes for Stats.
	external bool
	hole     []bool
	holes    int64
	nholes   atomic.Int64
}

type ringSlot[T any] struct {
	mu  sync.Mutex
	seq uint64 // 0: never written
	// hole marks a number that was skipped (WithExternalSeq): no value.
	hole bool
	val  T
}

var _ Buffer[int] = (*SpmcRing[int])(nil)

// NewSpmcRing returns an open ring that retains the newest capacity values;
// capacity must be at least 1 and is used exactly (not rounded up).
func NewSpmcRing[T any](capacity int, opts ...Option[T]) (*SpmcRing[T], error) {
	if capacity < 1 {
		return nil, fmt.Errorf("%w: %d, want at least 1", ErrInvalidCapacity, capacity)
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	b := &SpmcRing[T]{slots: make([]ringSlot[T], capacity)}
	if o.budget || o.external {
		// A ring numbered from outside keeps head as a budgeted one does,
		// with a budget nothing exceeds when it has none.
		bb := &byteBudget[T]{max: math.MaxInt64, sizes: make([]int64, capacity), external: o.external}
		if o.budget {
			bb.max, bb.size = o.maxBytes, o.size
		}
		if o.external {
			bb.hole = make([]bool, capacity)
		}
		bb.head.Store(1)
		b.budget = bb
	}
	return b, nil
}

// Push appends v, evicting the oldest values when the ring is full or, with
// a byte budget, when v would not fit in it. It never blocks on readers;
// after Close it returns ErrClosed. With a byte budget, a value larger than
// the whole budget is refused with a *TooLargeError.
func (b *SpmcRing[T]) Push(v T) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if b.budget != nil {
		return b.pushWithin(0, v)
	}
	seq := b.tail.Add(1)
	s := &b.slots[(seq-1)%uint64(len(b.slots))]
	s.mu.Lock()
	// Only concurrent producers can find a newer value here; the older
	// value then counts as pushed and at once evicted.
	if seq > s.seq {
		s.seq = seq
		s.val = v
	}
	s.mu.Unlock()
	b.waiters.wakeAll()
	return nil
}

// PushSeq stores v as value number seq, after the newest value, in a
// ring created WithExternalSeq (else ErrNotExternalSeq). The numbers
// between the newest value and seq are holes: a reader that reaches them
// lags by exactly their count. seq must be after the newest value (else
// ErrSeqNotAfter) and below 2^63. Otherwise as Push.
func (b *SpmcRing[T]) PushSeq(seq uint64, v T) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if b.budget == nil || !b.budget.external {
		return ErrNotExternalSeq
	}
	if seq == 0 || seq >= 1<<63 {
		return fmt.Errorf("%w: %d is no sequence number", ErrSeqNotAfter, seq)
	}
	return b.pushWithin(seq, v)
}

// pushWithin is Push (seq 0: the next number) and PushSeq for a ring that
// keeps head: it evicts, oldest first, what the count and then the bytes
// require, moves head past holes, and stores v, then the holes before it.
func (b *SpmcRing[T]) pushWithin(seq uint64, v T) error {
	bb := b.budget
	var sz int64
	if bb.size != nil {
		if sz = max(bb.size(v), 0); sz > bb.max {
			return &TooLargeError{Size: sz, MaxBytes: bb.max}
		}
	}
	n := uint64(len(b.slots))
	bb.mu.Lock()
	defer bb.mu.Unlock()
	t := b.tail.Load()
	switch {
	case seq == 0:
		seq = t + 1
	case seq <= t:
		return seqNotAfter(seq, t)
	}
	from := bb.head.Load()
	head := from
	if seq-head >= n {
		// Full: the window [head, seq] holds at most n numbers.
		head = seq - n + 1
	}
	for s := from; s < min(head, t+1); s++ {
		bb.evict(b.index(s))
	}
	head = b.pastHoles(head, t, seq)
	for bb.used+sz > bb.max {
		// sz <= max, so this stops at the latest when nothing else is left.
		bb.evict(b.index(head))
		head = b.pastHoles(head+1, t, seq)
	}
	// head first, then the slots: see the type's comment.
	bb.head.Store(head)
	// The numbers this push writes: the holes from first, then seq. An
	// evicted slot that one of them overwrites needs no clearing.
	first := max(t+1, head)
	for s := from; s < min(head, t+1); s++ {
		if s+n < first || s+n > seq {
			b.clear(s)
		}
	}
	i := b.index(seq)
	bb.sizes[i] = sz
	bb.used += sz
	bb.bytes.Store(bb.used)
	if skipped := seq - t - 1; skipped > 0 {
		b.gaps.Add(skipped)
	}
	b.tail.Store(seq)
	sl := &b.slots[i]
	sl.mu.Lock()
	sl.seq = seq
	sl.hole = false
	sl.val = v
	sl.mu.Unlock()
	// The holes newest first, so that a reader waiting at the first one
	// finds the whole run when it finds that one.
	var zero T
	for s := seq - 1; s >= first; s-- {
		j := b.index(s)
		bb.hole[j] = true
		bb.holes++
		hs := &b.slots[j]
		hs.mu.Lock()
		hs.seq, hs.hole, hs.val = s, true, zero
		hs.mu.Unlock()
	}
	if bb.external {
		bb.nholes.Store(bb.holes)
	}
	b.waiters.wakeAll()
	return nil
}

// evict forgets the size of the value, or the hole, in slot i, which head
// has passed.
func (bb *byteBudget[T]) evict(i int) {
	bb.used -= bb.sizes[i]
	bb.sizes[i] = 0
	if bb.hole != nil && bb.hole[i] {
		bb.hole[i] = false
		bb.holes--
	}
}

// pastHoles returns head moved past the holes it stands on, evicting them,
// when t is the newest value before seq is pushed: seq itself when nothing
// but holes is left before it.
func (b *SpmcRing[T]) pastHoles(head, t, seq uint64) uint64 {
	bb := b.budget
	for bb.hole != nil && head <= t && bb.hole[b.index(head)] {
		bb.evict(b.index(head))
		head++
	}
	if head > t {
		return seq
	}
	return head
}

// clear empties the slot of seq, evicted for bytes, so that its value can
// be freed at once rather than when the slot is next written.
func (b *SpmcRing[T]) clear(seq uint64) {
	i := b.index(seq)
	b.budget.sizes[i] = 0
	sl := &b.slots[i]
	var zero T
	sl.mu.Lock()
	if sl.seq == seq {
		sl.seq, sl.hole = 0, false
		sl.val = zero
	}
	sl.mu.Unlock()
}

// Subscribe returns a reader that starts after the newest value (default),
// at the oldest retained value (FromOldest), right after a given sequence
// number (AfterSeq), or at the newest n values retained (Last). AfterSeq
// with a sequence number beyond the newest one starts after the newest, as
// if the consumer were up to date. After Close it returns ErrClosed.
func (b *SpmcRing[T]) Subscribe(opts ...SubscribeOption) (Reader[T], error) {
	cfg := newSubscribeConfig(opts)
	r := &ringReader[T]{ring: b, core: newReaderCore()}
	t := b.tail.Load()
	switch cfg.start {
	case StartAtOldest:
		r.next = b.oldest(t)
	case StartAfterSeq:
		r.next = min(cfg.after, t) + 1
	case StartAtLast:
		// oldest is read after t: with a byte budget, pushes since then
		// may have moved head past t+1; clamped, nothing is held then.
		held := t + 1 - min(b.oldest(t), t+1)
		r.backfill, r.backfillLast = min(cfg.last, held), t
		r.next = t + 1 - r.backfill
	default:
		r.next = t + 1
	}
	r.idx = b.index(r.next)
	if err := b.register(&r.core); err != nil {
		return nil, err
	}
	return r, nil
}

// oldest returns the sequence number of the oldest value retained when t is
// the newest (1 when nothing was pushed).
func (b *SpmcRing[T]) oldest(t uint64) uint64 {
	if b.budget != nil {
		return b.budget.head.Load()
	}
	n := uint64(len(b.slots))
	if t <= n {
		return 1
	}
	return t - n + 1
}

func (b *SpmcRing[T]) index(seq uint64) int {
	return int((seq - 1) % uint64(len(b.slots)))
}

// Peek returns the newest value retained, if any.
func (b *SpmcRing[T]) Peek() (Item[T], bool) {
	t := b.tail.Load()
	if t == 0 {
		return Item[T]{}, false
	}
	s := &b.slots[b.index(t)]
	s.mu.Lock()
	defer s.mu.Unlock()
	// s.seq < t only while a concurrent producer is still writing t: the
	// slot then holds a value that is no longer retained, so say nothing
	// rather than something stale.
	if s.seq < t {
		return Item[T]{}, false
	}
	return Item[T]{Seq: s.seq, Value: s.val}, true
}

// Close stops the ring. Readers still receive every retained value ahead of
// their cursor (with lag errors where they fell behind), then ErrClosed.
// A Push racing with Close may or may not be delivered. Close is idempotent.
func (b *SpmcRing[T]) Close() {
	b.close()
}

// Stats returns the ring's counters. Occupancy is the number of values
// retained, which only grows up to the capacity (readers do not consume),
// or, with a byte budget, up to what the budget holds.
func (b *SpmcRing[T]) Stats() Stats {
	st := b.stats(TypeSpmcRing)
	n := uint64(len(b.slots))
	t := b.tail.Load()
	st.Capacity = len(b.slots)
	st.Produced = t - min(b.gaps.Load(), t)
	st.LastSeq = t
	occupancy := min(t, n)
	if bb := b.budget; bb != nil {
		// head is read after tail and only grows, so it is at most one
		// past tail; with a push in flight, occupancy may lag by one.
		occupancy = min(t+1-min(bb.head.Load(), t+1), n)
		occupancy -= min(uint64(max(bb.nholes.Load(), 0)), occupancy)
		if bb.size != nil {
			st.Bytes, st.MaxBytes = bb.bytes.Load(), bb.max
		}
	}
	occupancy = min(occupancy, st.Produced)
	st.Occupancy = int(occupancy)
	st.Evicted = st.Produced - occupancy
	return st
}

// Type returns TypeSpmcRing.
func (b *SpmcRing[T]) Type() Type { return TypeSpmcRing }

// ringReader is a cursor into a ring. next and idx belong to the goroutine
// that receives; core is shared with Close and the producer.
type ringReader[T any] struct {
	ring *SpmcRing[T]
	core readerCore
	next uint64 // sequence number of the next value to return
	idx  int    // slot of next, kept in step to avoid a division per receive
	// backfill is how many retained values the reader started with (Last),
	// backfillLast the newest sequence number at Subscribe.
	backfill, backfillLast uint64
}

var _ Backfiller = (*ringReader[int])(nil)

// Backfill returns how many values retained at Subscribe the reader
// started with (Last; 0 for the other starts) and the newest sequence
// number then (see Backfiller).
func (r *ringReader[T]) Backfill() (count, lastSeq uint64) { return r.backfill, r.backfillLast }

// Recv returns the next value, waiting for it if needed. A value that is
// already available is returned even when ctx is done.
func (r *ringReader[T]) Recv(ctx context.Context) (it Item[T], err error) {
	err = r.recv(ctx, true, &it)
	return
}

// TryRecv returns the next value, or ErrEmpty when there is none yet.
func (r *ringReader[T]) TryRecv() (it Item[T], err error) {
	err = r.recv(context.Background(), false, &it)
	return
}

// recv is Recv and TryRecv in one function. It writes the value straight
// into *it: a 40-byte Item copied through several call levels costs more
// than everything else a receive does.
func (r *ringReader[T]) recv(ctx context.Context, block bool, it *Item[T]) error {
	for {
		if r.core.closed.Load() {
			return ErrClosed
		}
		// Load closed before looking at the slot: a Push that returned
		// before Close is then sure to be seen below, so nothing is lost
		// at close.
		closed := r.ring.closed.Load()
		s := &r.ring.slots[r.idx]
		s.mu.Lock()
		seq := s.seq
		if seq == r.next {
			if s.hole {
				s.mu.Unlock()
				return r.lag()
			}
			it.Seq = seq
			it.Value = s.val
			s.mu.Unlock()
			r.next++
			r.idx++
			if r.idx == len(r.ring.slots) {
				r.idx = 0
			}
			r.ring.handOut(&r.core)
			return nil
		}
		s.mu.Unlock()
		switch {
		case seq > r.next:
			return r.lag()
		case r.evicted():
			// The slot was cleared for the byte budget (see the type).
			return r.lag()
		case closed:
			return ErrClosed
		case !block:
			return ErrEmpty
		}
		if err := r.ring.park(ctx, &r.core, r); err != nil {
			return err
		}
	}
}

// ready reports whether recv would return without waiting.
func (r *ringReader[T]) ready() bool {
	if r.core.closed.Load() || r.ring.closed.Load() {
		return true
	}
	s := &r.ring.slots[r.idx]
	s.mu.Lock()
	seq := s.seq
	s.mu.Unlock()
	return seq >= r.next || r.evicted()
}

// evicted reports whether the reader's next value was evicted for the byte
// budget; the caller has just found its slot without that value.
func (r *ringReader[T]) evicted() bool {
	bb := r.ring.budget
	return bb != nil && r.next < bb.head.Load()
}

// lag moves the cursor past the holes it stands on (WithExternalSeq) and
// then to the oldest retained value, after the reader found a hole or its
// slot overwritten, and reports how many values it skipped over.
func (r *ringReader[T]) lag() error {
	var missed uint64
	if bb := r.ring.budget; bb != nil && bb.external {
		missed = r.skipHoles()
	}
	// The slot held a value at least one lap ahead of next, so tail is too
	// and oldest > next; or (byte budget) head had passed next; or next
	// stood on holes, in which case next may now be a value.
	if oldest := r.ring.oldest(r.ring.tail.Load()); r.next < oldest {
		missed += oldest - r.next
		r.next = oldest
		r.idx = r.ring.index(oldest)
	}
	r.ring.lagEvents.Add(1)
	r.ring.laggedValues.Add(missed)
	return &LaggedError{Missed: missed}
}

// skipHoles moves the cursor past the run of holes at next and returns
// its length.
func (r *ringReader[T]) skipHoles() (n uint64) {
	for {
		s := &r.ring.slots[r.idx]
		s.mu.Lock()
		hole := s.hole && s.seq == r.next
		s.mu.Unlock()
		if !hole {
			return n
		}
		n++
		r.next++
		r.idx++
		if r.idx == len(r.ring.slots) {
			r.idx = 0
		}
	}
}

// Close unsubscribes: a parked Recv returns ErrClosed at once.
func (r *ringReader[T]) Close() {
	r.ring.unregister(&r.core)
}

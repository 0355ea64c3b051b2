package buffer

import (
	"context"
	"sync"
	"sync/atomic"
)

// SingleLatest keeps only the newest value. Every reader gets the newest
// value it has not seen yet; values replaced before a reader looked are
// skipped (and counted), never reported as lag. A new reader first gets the
// current value, if there is one.
//
// The value is guarded by a mutex, held only while the value is copied in
// or out: Push never waits for a reader to receive, only, for nanoseconds,
// for a reader copying the value out. The sequence number is also published
// in an atomic so that a reader with nothing new finds out without taking
// the lock.
//
// The zero SingleLatest is an open, empty buffer, as NewSingleLatest
// returns. A SingleLatest must not be copied after first use.
type SingleLatest[T any] struct {
	hub
	mu  sync.Mutex
	val T
	// seq is the sequence number of val (0: nothing pushed yet). Written
	// only with mu held.
	seq atomic.Uint64
}

var _ Buffer[int] = (*SingleLatest[int])(nil)

// NewSingleLatest returns an open, empty SingleLatest.
func NewSingleLatest[T any]() *SingleLatest[T] {
	return &SingleLatest[T]{}
}

// Push replaces the current value, even when nobody subscribes. It never
// blocks; after Close it returns ErrClosed.
func (b *SingleLatest[T]) Push(v T) error {
	if b.closed.Load() {
		return ErrClosed
	}
	b.mu.Lock()
	b.val = v
	b.seq.Store(b.seq.Load() + 1)
	b.mu.Unlock()
	b.waiters.wakeAll()
	return nil
}

// PushSeq replaces the current value with v as value number seq, which
// must be after the current one (else ErrSeqNotAfter); readers count the
// numbers in between as skipped. Otherwise as Push.
func (b *SingleLatest[T]) PushSeq(seq uint64, v T) error {
	if b.closed.Load() {
		return ErrClosed
	}
	b.mu.Lock()
	last := b.seq.Load()
	if seq <= last {
		b.mu.Unlock()
		return seqNotAfter(seq, last)
	}
	b.val = v
	b.gaps.Add(seq - last - 1)
	b.seq.Store(seq)
	b.mu.Unlock()
	b.waiters.wakeAll()
	return nil
}

// Subscribe returns a reader whose first receive returns the current value,
// or waits for the first one when nothing was pushed yet. The start options
// do not apply and are ignored. After Close it returns ErrClosed.
func (b *SingleLatest[T]) Subscribe(_ ...SubscribeOption) (Reader[T], error) {
	r := &latestReader[T]{buf: b, core: newReaderCore()}
	if s := b.seq.Load(); s > 0 {
		r.last = s - 1
	}
	if err := b.register(&r.core); err != nil {
		return nil, err
	}
	return r, nil
}

// Peek returns the current value, if any.
func (b *SingleLatest[T]) Peek() (Item[T], bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.seq.Load()
	return Item[T]{Seq: s, Value: b.val}, s > 0
}

// Close stops the buffer. A reader that has not seen the current value
// still gets it, then ErrClosed. Close is idempotent.
func (b *SingleLatest[T]) Close() {
	b.close()
}

// Stats returns the counters.
func (b *SingleLatest[T]) Stats() Stats {
	st := b.stats(TypeSingleLatest)
	s := b.seq.Load()
	st.Capacity = 1
	st.Produced = s - min(b.gaps.Load(), s)
	st.LastSeq = s
	if s > 0 {
		st.Occupancy = 1
	}
	return st
}

// Type returns TypeSingleLatest.
func (b *SingleLatest[T]) Type() Type { return TypeSingleLatest }

type latestReader[T any] struct {
	buf  *SingleLatest[T]
	core readerCore
	last uint64 // sequence number of the last value returned (or its stand-in)
}

// Recv returns the newest value this reader has not seen, waiting for one
// if needed. A value that is already available is returned even when ctx is
// done.
func (r *latestReader[T]) Recv(ctx context.Context) (it Item[T], err error) {
	err = r.recv(ctx, true, &it)
	return
}

// TryRecv returns the newest unseen value, or ErrEmpty.
func (r *latestReader[T]) TryRecv() (it Item[T], err error) {
	err = r.recv(context.Background(), false, &it)
	return
}

// recv is Recv and TryRecv in one function (see ringReader.recv).
func (r *latestReader[T]) recv(ctx context.Context, block bool, it *Item[T]) error {
	b := r.buf
	for {
		if r.core.closed.Load() {
			return ErrClosed
		}
		closed := b.closed.Load()
		if b.seq.Load() != r.last {
			b.mu.Lock()
			it.Seq = b.seq.Load()
			it.Value = b.val
			b.mu.Unlock()
			if gap := it.Seq - r.last - 1; gap > 0 {
				b.skipped.Add(gap)
			}
			r.last = it.Seq
			b.handOut(&r.core)
			return nil
		}
		switch {
		case closed:
			return ErrClosed
		case !block:
			return ErrEmpty
		}
		if err := b.park(ctx, &r.core, r); err != nil {
			return err
		}
	}
}

// ready reports whether recv would return without waiting.
func (r *latestReader[T]) ready() bool {
	return r.core.closed.Load() || r.buf.closed.Load() || r.buf.seq.Load() != r.last
}

// Close unsubscribes: a parked Recv returns ErrClosed at once.
func (r *latestReader[T]) Close() {
	r.buf.unregister(&r.core)
}

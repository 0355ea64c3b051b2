package buffer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Mailbox is a single slot with take semantics: a push replaces an unread
// value (counted as an overwrite), a receive empties the slot. Competing
// readers each get different values: every value goes to at most one
// reader. One reader is the intended use.
//
// The slot is guarded by a mutex, held only while a value is copied in or
// out: Push never waits for a reader to receive, only, for nanoseconds, for
// a reader taking the value.
//
// The zero Mailbox is an open, empty mailbox, as NewMailbox returns. A
// Mailbox must not be copied after first use.
type Mailbox[T any] struct {
	hub
	mu      sync.Mutex
	val     T
	pending bool   // val is unread
	pseq    uint64 // sequence number of val
	// seq is the sequence number of the newest push: Produced and LastSeq.
	// Written only with mu held.
	seq atomic.Uint64
	// take, when set, must agree to each take (WithTake).
	take func(Item[T]) error
}

var _ Buffer[int] = (*Mailbox[int])(nil)

// NewMailbox returns an open, empty Mailbox. Of the options, only WithTake
// applies to a Mailbox.
func NewMailbox[T any](opts ...Option[T]) *Mailbox[T] {
	var o options[T]
	for _, opt := range opts {
		opt(&o)
	}
	return &Mailbox[T]{take: o.take}
}

// Push puts v in the slot, replacing an unread value. It never blocks;
// after Close it returns ErrClosed.
func (b *Mailbox[T]) Push(v T) error {
	if b.closed.Load() {
		return ErrClosed
	}
	b.mu.Lock()
	if b.pending {
		b.overwrites.Add(1)
	}
	b.val = v
	b.pending = true
	b.pseq = b.seq.Load() + 1
	b.seq.Store(b.pseq)
	b.mu.Unlock()
	b.waiters.wakeAll()
	return nil
}

// PushSeq puts v in the slot as value number seq, which must be after the
// newest one (else ErrSeqNotAfter). Otherwise as Push.
func (b *Mailbox[T]) PushSeq(seq uint64, v T) error {
	if b.closed.Load() {
		return ErrClosed
	}
	b.mu.Lock()
	last := b.seq.Load()
	if seq <= last {
		b.mu.Unlock()
		return seqNotAfter(seq, last)
	}
	if b.pending {
		b.overwrites.Add(1)
	}
	b.val = v
	b.pending = true
	b.pseq = seq
	b.gaps.Add(seq - last - 1)
	b.seq.Store(seq)
	b.mu.Unlock()
	b.waiters.wakeAll()
	return nil
}

// agree asks the take function, if any, to agree to the take of it, which
// recv has just taken out of the slot. It returns whether to hand it out,
// and the error for the reader when the take failed: the value is then
// back in the slot, unless a newer one arrived meanwhile.
func (b *Mailbox[T]) agree(it *Item[T]) (bool, error) {
	if b.take == nil {
		return true, nil
	}
	err := b.take(*it)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrGone):
		return false, nil
	}
	b.mu.Lock()
	if !b.pending && b.seq.Load() == it.Seq {
		b.val, b.pending, b.pseq = it.Value, true, it.Seq
	}
	b.mu.Unlock()
	return false, fmt.Errorf("%w: value %d: %w", ErrTakeFailed, it.Seq, err)
}

// Subscribe returns a reader competing for the slot; a value already
// pending is there for it to take. The start options do not apply and are
// ignored. After Close it returns ErrClosed.
func (b *Mailbox[T]) Subscribe(_ ...SubscribeOption) (Reader[T], error) {
	r := &mailboxReader[T]{buf: b, core: newReaderCore()}
	if err := b.register(&r.core); err != nil {
		return nil, err
	}
	return r, nil
}

// Peek returns the pending value without taking it, if there is one.
func (b *Mailbox[T]) Peek() (Item[T], bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.pending {
		return Item[T]{}, false
	}
	return Item[T]{Seq: b.pseq, Value: b.val}, true
}

// Close stops the mailbox. A pending value is still delivered to one
// reader; after that readers get ErrClosed. Close is idempotent.
func (b *Mailbox[T]) Close() {
	b.close()
}

// Stats returns the counters. Occupancy is 1 while a value is pending.
func (b *Mailbox[T]) Stats() Stats {
	st := b.stats(TypeMailbox)
	s := b.seq.Load()
	st.Capacity = 1
	st.Produced = s - min(b.gaps.Load(), s)
	st.LastSeq = s
	// The slot's lock is held for a moment only; atomics would make every
	// push and take pay for this rarely read gauge.
	b.mu.Lock()
	if b.pending {
		st.Occupancy = 1
	}
	b.mu.Unlock()
	return st
}

// Type returns TypeMailbox.
func (b *Mailbox[T]) Type() Type { return TypeMailbox }

type mailboxReader[T any] struct {
	buf  *Mailbox[T]
	core readerCore
}

// Recv takes the pending value, waiting for one if needed. A value that is
// already pending is taken even when ctx is done.
func (r *mailboxReader[T]) Recv(ctx context.Context) (it Item[T], err error) {
	err = r.recv(ctx, true, &it)
	return
}

// TryRecv takes the pending value, or returns ErrEmpty.
func (r *mailboxReader[T]) TryRecv() (it Item[T], err error) {
	err = r.recv(context.Background(), false, &it)
	return
}

// recv is Recv and TryRecv in one function (see ringReader.recv).
func (r *mailboxReader[T]) recv(ctx context.Context, block bool, it *Item[T]) error {
	b := r.buf
	for {
		if r.core.closed.Load() {
			return ErrClosed
		}
		closed := b.closed.Load()
		b.mu.Lock()
		if b.pending {
			it.Seq = b.pseq
			it.Value = b.val
			var zero T
			b.val = zero // let the garbage collector have what the value points to
			b.pending = false
			b.mu.Unlock()
			ok, err := b.agree(it)
			if err != nil {
				return err
			}
			if !ok {
				// Taken elsewhere: look again for a newer value.
				continue
			}
			b.handOut(&r.core)
			return nil
		}
		b.mu.Unlock()
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
func (r *mailboxReader[T]) ready() bool {
	if r.core.closed.Load() || r.buf.closed.Load() {
		return true
	}
	r.buf.mu.Lock()
	defer r.buf.mu.Unlock()
	return r.buf.pending
}

// Close unsubscribes: a parked Recv returns ErrClosed at once.
func (r *mailboxReader[T]) Close() {
	r.buf.unregister(&r.core)
}

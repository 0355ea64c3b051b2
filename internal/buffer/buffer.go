package buffer

import (
	"context"
	"errors"
	"fmt"
)

// Item is one value held by a buffer, with the sequence number the buffer
// gave it. Sequence numbers start at 1 and increase by one per Push, per
// buffer, so a consumer can resume "after sequence S" and can tell a gap;
// with PushSeq they are the caller's (a durable stream's), increasing,
// with gaps where the stream lost values.
type Item[T any] struct {
	Seq   uint64
	Value T
}

// Buffer holds a record with one of the three semantics of the buffer
// contract. All methods are safe for concurrent use. Push never blocks.
type Buffer[T any] interface {
	// Push stores v. It never blocks and never fails while the buffer is
	// open; after Close it returns ErrClosed.
	Push(v T) error
	// PushSeq stores v as value number seq, which must be after the newest
	// one (else ErrSeqNotAfter); numbers skipped are values that never
	// reach this buffer (a ring's readers are told of them as lag). A ring
	// needs WithExternalSeq for it (else ErrNotExternalSeq).
	PushSeq(seq uint64, v T) error
	// Subscribe returns a new reader positioned as opts say (default: the
	// type's own rule, see StartAt). After Close it returns ErrClosed.
	Subscribe(opts ...SubscribeOption) (Reader[T], error)
	// Peek returns the current value without consuming it, if there is one.
	Peek() (Item[T], bool)
	// Close stops the buffer. Readers first receive what their type's rules
	// still let them receive, then ErrClosed. Close is idempotent.
	Close()
	// Stats returns a snapshot of the counters, taken without locking
	// out producers or readers.
	Stats() Stats
	// Type reports which of the three semantics this buffer has.
	Type() Type
}

// Reader is one subscriber's view of a buffer. A Reader is meant to be used
// by one goroutine at a time, except Close, which may be called from any
// goroutine to wake and release a blocked Recv.
type Reader[T any] interface {
	// Recv blocks until a value is available, the buffer is closed, the
	// reader is closed, or ctx is done. It returns a *LaggedError when
	// values this reader had not read were evicted (SpmcRing only).
	Recv(ctx context.Context) (Item[T], error)
	// TryRecv is Recv without waiting: it returns ErrEmpty when nothing is
	// available now.
	TryRecv() (Item[T], error)
	// Close unsubscribes at once: a blocked Recv returns ErrClosed and the
	// buffer forgets this reader. Close is idempotent.
	Close()
}

// Type names the buffer semantics; the values are the Record API's names.
type Type string

const (
	// TypeSpmcRing is a bounded broadcast ring with lag detection.
	TypeSpmcRing Type = "SpmcRing"
	// TypeSingleLatest keeps only the latest value.
	TypeSingleLatest Type = "SingleLatest"
	// TypeMailbox is a single slot whose unread value is overwritten.
	TypeMailbox Type = "Mailbox"
)

// Stats is a snapshot of a buffer's counters. Counters only grow; Occupancy
// and Subscribers are gauges.
type Stats struct {
	Type Type
	// Capacity is the ring's capacity, 1 for the single-slot types.
	Capacity int
	// Produced counts successful pushes.
	Produced uint64
	// Delivered counts values handed to readers, summed over readers.
	Delivered uint64
	// LagEvents counts LaggedErrors returned (SpmcRing).
	LagEvents uint64
	// LaggedValues sums LaggedError.Missed over all readers (SpmcRing). Two
	// slow readers missing the same value count it twice, so this can exceed
	// the number of distinct values evicted.
	LaggedValues uint64
	// Skipped sums, over readers, the values a reader never saw because a
	// newer one replaced them first (SingleLatest).
	Skipped uint64
	// Overwrites counts unread values replaced by a newer push (Mailbox).
	Overwrites uint64
	// Evicted counts values the ring dropped to make room: because it was
	// full, or over its byte budget (SpmcRing). Every value a ring took is
	// retained or evicted: Produced = Evicted + Occupancy.
	Evicted uint64
	// Occupancy is the number of values held now.
	Occupancy int
	// Bytes is the size of the values held now, as the byte budget's size
	// function measures them; MaxBytes is the budget. Both are 0 for a
	// buffer without a budget (WithMaxBytes).
	Bytes    int64
	MaxBytes int64
	// Subscribers is the number of open readers.
	Subscribers int
	// LastSeq is the sequence number of the newest value pushed (0: none).
	LastSeq uint64
}

// ErrClosed is returned by Push and Subscribe after Close, and by a
// reader's receive once it has received all it may after Close, or after
// the reader itself was closed.
var ErrClosed = errors.New("buffer closed")

// ErrEmpty is returned by TryRecv when no value is available now.
var ErrEmpty = errors.New("buffer empty")

// ErrLagged matches any *LaggedError with errors.Is.
var ErrLagged = errors.New("reader lagged")

// LaggedError reports that a SpmcRing reader's next values were evicted
// before it read them. The reader's cursor has moved to the oldest retained
// value, which its next receive returns: lag is not fatal.
type LaggedError struct {
	// Missed is exactly how many values this reader lost.
	Missed uint64
}

func (e *LaggedError) Error() string {
	return fmt.Sprintf("reader lagged: missed %d values", e.Missed)
}

// Is makes errors.Is(err, ErrLagged) true for any *LaggedError.
func (e *LaggedError) Is(target error) bool { return target == ErrLagged }

// ErrTooLarge matches any *TooLargeError with errors.Is.
var ErrTooLarge = errors.New("value larger than the byte budget")

// TooLargeError is returned by the Push of a ring with a byte budget for a
// value larger than the whole budget. The value is refused: it takes no
// sequence number and evicts nothing, so the values retained stay within
// the budget and an outsized value cannot empty the ring.
type TooLargeError struct {
	// Size is the value's size, MaxBytes the ring's budget.
	Size, MaxBytes int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("value of %d bytes larger than the byte budget of %d", e.Size, e.MaxBytes)
}

// Is makes errors.Is(err, ErrTooLarge) true for any *TooLargeError.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// StartAt says where a new SpmcRing reader begins. The single-slot types
// ignore it: a SingleLatest reader always begins with the current value and
// a Mailbox reader with the pending one.
type StartAt int

const (
	// StartAtNext (the default) begins after the newest value: the reader
	// sees only values pushed after it subscribed.
	StartAtNext StartAt = iota
	// StartAtOldest begins at the oldest value still retained.
	StartAtOldest
	// StartAfterSeq begins right after a given sequence number (resume after
	// reconnect). When that sequence's successor was already evicted, the
	// first receive returns a *LaggedError with the exact gap.
	StartAfterSeq
	// StartAtLast begins n values before the next one: at the newest n
	// values retained, or at the oldest retained when the ring holds fewer
	// (a backfill for a new consumer). It never begins with a lag: it asks
	// only for values that are retained when it subscribes.
	StartAtLast
)

// SubscribeOption configures Subscribe.
type SubscribeOption func(*subscribeConfig)

type subscribeConfig struct {
	start StartAt
	after uint64
	last  uint64
}

// FromOldest makes a ring reader start at the oldest retained value.
func FromOldest() SubscribeOption {
	return func(c *subscribeConfig) { c.start = StartAtOldest }
}

// AfterSeq makes a ring reader start right after sequence seq; AfterSeq(0)
// means "from the very first value", which is a gap if it was evicted.
func AfterSeq(seq uint64) SubscribeOption {
	return func(c *subscribeConfig) { c.start = StartAfterSeq; c.after = seq }
}

// Last makes a ring reader start at the newest n values retained, all of
// them when it holds fewer than n; the reader's Backfill says how many that
// was. Last(0) is the default start, after the newest value.
func Last(n uint64) SubscribeOption {
	return func(c *subscribeConfig) { c.start = StartAtLast; c.last = n }
}

// Backfiller is implemented by the readers of a SpmcRing. Backfill
// reports how many values retained when the reader subscribed it starts
// with (count: the n of Last, or fewer when the ring held fewer; 0 for the
// other starts) and the newest sequence number then (lastSeq; 0 when
// nothing had been pushed): the reader's backfill is lastSeq-count+1
// through lastSeq. Those are the next values it receives, in order,
// unless the producer evicts them first (a reader that falls a whole ring
// behind), which its receive reports as a *LaggedError, as always.
type Backfiller interface {
	Backfill() (count, lastSeq uint64)
}

func newSubscribeConfig(opts []SubscribeOption) subscribeConfig {
	var c subscribeConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

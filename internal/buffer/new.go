package buffer

import (
	"errors"
	"fmt"
)

// ErrInvalidCapacity is returned for a ring capacity below 1.
var ErrInvalidCapacity = errors.New("invalid buffer capacity")

// ErrUnknownType is returned by New for a Type that is none of the three.
var ErrUnknownType = errors.New("unknown buffer type")

// ErrSeqNotAfter is returned by PushSeq for a sequence number that is not
// after the newest one pushed: the value is refused.
var ErrSeqNotAfter = errors.New("sequence number not after the newest")

// seqNotAfter is the ErrSeqNotAfter of a PushSeq(seq) on a buffer whose
// newest value is number newest.
func seqNotAfter(seq, newest uint64) error {
	return fmt.Errorf("%w: %d, the newest is %d", ErrSeqNotAfter, seq, newest)
}

// ErrNotExternalSeq is returned by PushSeq on a ring created without
// WithExternalSeq.
var ErrNotExternalSeq = errors.New("ring numbers its own values")

// ErrGone is wrapped by a WithTake function's error when the value is no
// longer there to take.
var ErrGone = errors.New("value gone")

// ErrTakeFailed is wrapped by a Mailbox receive's error when its WithTake
// function failed for another reason than ErrGone; the value stays.
var ErrTakeFailed = errors.New("take failed")

// ErrInvalidMaxBytes is returned for a byte budget below 1 byte or without
// a size function.
var ErrInvalidMaxBytes = errors.New("invalid byte budget")

// Option configures a buffer when it is created.
type Option[T any] func(*options[T])

type options[T any] struct {
	maxBytes int64
	size     func(T) int64
	budget   bool
	external bool
	take     func(Item[T]) error
}

// WithExternalSeq makes a ring take the sequence numbers of its values
// from the caller (PushSeq), as a buffer restored from and following a
// durable stream does: the stream's numbers, which may have gaps where the
// stream deleted messages. A reader positioned before a gap of k numbers
// is told it lagged by exactly k. Push still works and numbers the value
// after the newest one. The single-slot types accept PushSeq without it.
//
// Such a ring serialises its pushes with a mutex, as one with a byte
// budget does; a ring without either keeps its lock-free push.
func WithExternalSeq[T any]() Option[T] {
	return func(o *options[T]) { o.external = true }
}

// WithTake gives a Mailbox a function that must agree to each take before
// the value is handed to the reader: a durable Mailbox removes the value
// from its stream there, so that a value taken once is never taken again,
// by another replica or after a restart. take runs on the receiving
// goroutine, outside the Mailbox's lock. An error wrapping ErrGone means
// the value is no longer there to take (another replica took it): it is
// dropped and the reader looks for the next one. Any other error puts the
// value back, unless a newer one arrived meanwhile, and the receive
// returns an error wrapping ErrTakeFailed. The other types ignore it.
func WithTake[T any](take func(Item[T]) error) Option[T] {
	return func(o *options[T]) { o.take = take }
}

// WithMaxBytes gives a ring a byte budget besides its capacity: the ring
// then holds at most maxBytes bytes of values, size(v) being the bytes of
// value v, and evicts its oldest values when a push would exceed either
// bound. A value larger than the whole budget is refused (*TooLargeError).
// size is called once per push, on the pushing goroutine, and must not
// call the ring; a negative size counts as 0. The single-slot types hold
// one value and ignore the option.
//
// A ring with a budget serialises its pushes with a mutex, since eviction
// by bytes must see the sizes of the values it evicts in order; a ring
// without one keeps its lock-free push.
func WithMaxBytes[T any](maxBytes int64, size func(T) int64) Option[T] {
	return func(o *options[T]) { o.budget, o.maxBytes, o.size = true, maxBytes, size }
}

func newOptions[T any](opts []Option[T]) (options[T], error) {
	var o options[T]
	for _, opt := range opts {
		opt(&o)
	}
	if o.budget && (o.maxBytes < 1 || o.size == nil) {
		return o, fmt.Errorf("%w: %d bytes (size function given: %v), want at least 1 byte and a size function", ErrInvalidMaxBytes, o.maxBytes, o.size != nil)
	}
	return o, nil
}

// New returns an open buffer of type t. capacity is the ring's capacity
// and is ignored by the single-slot types, as are the options that concern
// only a ring (WithMaxBytes, WithExternalSeq) or only a Mailbox (WithTake).
func New[T any](t Type, capacity int, opts ...Option[T]) (Buffer[T], error) {
	switch t {
	case TypeSpmcRing:
		return NewSpmcRing(capacity, opts...)
	case TypeSingleLatest:
		return NewSingleLatest[T](), nil
	case TypeMailbox:
		return NewMailbox(opts...), nil
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, t)
	}
}

// Types returns the three buffer types, in the contract's order.
func Types() []Type { return []Type{TypeSpmcRing, TypeSingleLatest, TypeMailbox} }

// ParseType returns the Type named s (exactly as in the Record API), or an
// error wrapping ErrUnknownType.
func ParseType(s string) (Type, error) {
	switch t := Type(s); t {
	case TypeSpmcRing, TypeSingleLatest, TypeMailbox:
		return t, nil
	default:
		return "", fmt.Errorf("%w: %q, want SpmcRing, SingleLatest or Mailbox", ErrUnknownType, s)
	}
}

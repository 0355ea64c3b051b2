package buffer

import (
	"errors"
	"fmt"
)

// ErrInvalidCapacity is returned for a ring capacity below 1.
var ErrInvalidCapacity = errors.New("invalid buffer capacity")

// ErrUnknownType is returned by New for a Type that is none of the three.
var ErrUnknownType = errors.New("unknown buffer type")

// ErrInvalidMaxBytes is returned for a byte budget below 1 byte or without
// a size function.
var ErrInvalidMaxBytes = errors.New("invalid byte budget")

// Option configures a buffer when it is created.
type Option[T any] func(*options[T])

type options[T any] struct {
	maxBytes int64
	size     func(T) int64
	budget   bool
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
// only a ring (WithMaxBytes).
func New[T any](t Type, capacity int, opts ...Option[T]) (Buffer[T], error) {
	switch t {
	case TypeSpmcRing:
		return NewSpmcRing(capacity, opts...)
	case TypeSingleLatest:
		return NewSingleLatest[T](), nil
	case TypeMailbox:
		return NewMailbox[T](), nil
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

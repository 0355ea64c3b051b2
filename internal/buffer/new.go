package buffer

import (
	"errors"
	"fmt"
)

// ErrInvalidCapacity is returned for a ring capacity below 1.
var ErrInvalidCapacity = errors.New("invalid buffer capacity")

// ErrUnknownType is returned by New for a Type that is none of the three.
var ErrUnknownType = errors.New("unknown buffer type")

// New returns an open buffer of type t. capacity is the ring's capacity
// and is ignored by the single-slot types.
func New[T any](t Type, capacity int) (Buffer[T], error) {
	switch t {
	case TypeSpmcRing:
		return NewSpmcRing[T](capacity)
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

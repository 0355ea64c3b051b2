package sizing

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/recbuf/recbuf/internal/wire"
)

// Sizes in bytes.
const (
	KiB int64 = 1 << 10
	MiB int64 = 1 << 20
	GiB int64 = 1 << 30
)

// The parts of the formula (docs/operations.md#memory).
const (
	// ProcessBytes is what a buffer process needs besides its values and
	// its intake queue: the Go runtime, the binary, goroutine stacks, the
	// NATS client's read buffer, and the HTTP server with a few dozen
	// consumers. An idle process with a ring of 1024 slots measures 15 MiB
	// resident (19 MiB standalone, with its embedded NATS server); the rest
	// is room for consumers' connections and the garbage collector's data.
	ProcessBytes = 32 * MiB
	// StreamBytes is what one open consumer event stream costs a buffer
	// process: its connection, goroutines and buffers, 32–33 KiB measured
	// with 1000 and 3000 idle streams open (docs/operations.md#memory).
	// ProcessBytes covers wire.DefaultMaxStreams of them; a Record
	// that raises spec.consumers.maxStreams gets StreamBytes for each one
	// beyond.
	StreamBytes = 32 * KiB
	// SlotBytes is the memory of one ring slot whatever it holds (its lock,
	// sequence number and message header, about 110 bytes) plus the small
	// allocations a retained message brings besides its payload: its
	// subject (at most 256 bytes in a Record) and device name.
	SlotBytes int64 = 512
	// PendingMessages is the length of the intake's queue in messages:
	// nats.go's pending limit, between the socket and the buffer. The queue
	// absorbs bursts that arrive faster than the buffer takes them in (a
	// garbage collection, a busy CPU); beyond it, messages are dropped and
	// counted (slow_consumer).
	PendingMessages = 32768
	// PendingMessageBytes is one queued message besides its payload
	// (nats.go's Msg, about 110 bytes, and the subject it allocates).
	PendingMessageBytes int64 = 256
	// PendingPayloads is how many messages of the largest size the intake
	// queue holds at least, and MinPendingBytes its least size in bytes:
	// 32 MiB for messages up to 4 MiB, half nats.go's default of 64 MiB,
	// which 8 MiB messages reach.
	PendingPayloads       = 8
	MinPendingBytes int64 = 32 * MiB
	// DefaultCeiling is the largest memory limit the manager gives a buffer
	// container by default (its --buffer-memory-ceiling).
	DefaultCeiling = GiB
	// GoLimitPercent is the share of the container's memory limit that the
	// buffer process sets as the Go runtime's soft limit (GOMEMLIMIT): the
	// garbage collector works harder as the heap nears it, well before the
	// kernel kills the container at the hard limit. The rest is for what
	// the Go limit does not count: the binary's text, thread stacks, and
	// the kernel's socket buffers, which the container's cgroup is charged.
	GoLimitPercent = 90
)

// MemoryLimitEnv is the buffer container's environment variable that
// carries its memory limit in bytes (the downward API's limits.memory).
const MemoryLimitEnv = "MEMORY_LIMIT"

// ErrDoesNotFit is matched with errors.Is by every *DoesNotFitError.
var ErrDoesNotFit = errors.New("the buffer does not fit in its memory limit")

// PendingLimits is the intake's queue: at most messages messages and bytes
// bytes of payloads wait between the NATS socket and the buffer. Beyond
// either, nats.go drops what arrives and reports a slow consumer, which
// the intake counts by reason (slow_consumer).
func PendingLimits(maxMessageBytes int64) (messages int, bytes int64) {
	return PendingMessages, max(MinPendingBytes, PendingPayloads*maxMessageBytes)
}

// MinLimit is the least memory limit of any buffer process: the process
// and the smallest intake queue, with headroom, before it holds a value.
func MinLimit() int64 {
	_, bytes := PendingLimits(0)
	return LimitFor(ProcessBytes + bytes + PendingMessages*PendingMessageBytes)
}

// GoMemoryLimit is the Go runtime's soft memory limit for a container
// limit of containerLimit bytes: GoLimitPercent of it.
func GoMemoryLimit(containerLimit int64) int64 {
	return containerLimit / 100 * GoLimitPercent
}

// Declared is what a Record declares that decides its buffer process's
// memory, in bytes.
type Declared struct {
	// Capacity is the ring's capacity; 0 for the single-slot types, which
	// hold one value.
	Capacity int64
	// MaxMessageBytes is the largest payload taken in.
	MaxMessageBytes int64
	// MaxBytes is the ring's byte budget (spec.buffer.maxBytes); 0 unset.
	MaxBytes int64
	// Limit is the container's memory limit the Record sets itself
	// (spec.resources.limits.memory); 0 when it sets none.
	Limit int64
	// Ceiling is the largest default limit (the manager's
	// --buffer-memory-ceiling); <= 0 means DefaultCeiling.
	Ceiling int64
	// MaxStreams is the most event streams the process serves at once
	// (spec.consumers.maxStreams); 0 unset: the consumer API's default.
	MaxStreams int64
}

// Plan is the memory of one buffer process: what it holds at worst, and
// the limit it runs with.
type Plan struct {
	// MaxBytes is the ring's byte budget the buffer process is given: the
	// Record's, or what the limit leaves when the Record sets none. 0 when
	// capacity × maxMessageBytes is within the limit anyway (the count
	// bounds the ring first) and for the single-slot types.
	MaxBytes int64
	// Values is the most bytes of payloads the buffer holds: the budget,
	// capacity × maxMessageBytes if that is less, or one message for the
	// single-slot types.
	Values int64
	// Slots, Pending and Process are the rest of the worst case: the
	// ring's slots, the intake's queue, and the process itself.
	Slots, Pending, Process int64
	// Limit is the container's memory limit: the Record's own, or the
	// default (Need with headroom, at most the ceiling).
	Limit int64
	// Request is the default memory request: the steady state (Steady)
	// with the same headroom, at most Limit. What a ring holds, once
	// filled, it keeps; the intake queue fills only in bursts, so the
	// limit covers it and the request does not. 0 with the Record's own
	// limit: its spec.resources replace the defaults as a whole.
	Request int64
	// Default says that Limit is the manager's default, not the Record's.
	Default bool
}

// Need is the worst case: what the buffer process holds at most.
func (p Plan) Need() int64 { return p.Steady() + p.Pending }

// Steady is what the buffer process holds once its buffer is full and its
// intake queue empty: the values, the ring's slots and the process.
func (p Plan) Steady() int64 { return p.Values + p.Slots + p.Process }

// LimitFor is the memory limit a worst case of need bytes asks for: need
// is at most four fifths of it, which leaves the garbage collector room
// below the Go limit (GoLimitPercent) to collect without running all the
// time. Rounded up to a mebibyte.
func LimitFor(need int64) int64 {
	l := (need*5 + 3) / 4
	return (l + MiB - 1) / MiB * MiB
}

// Usable is the most a limit of limit bytes holds: four fifths of it.
func Usable(limit int64) int64 { return limit / 5 * 4 }

// Size is the formula: the memory plan of a buffer process for what d
// declares. It fails with a *DoesNotFitError when the worst case exceeds
// the usable part of the limit the process would run with: the Record's
// own limit, or the ceiling when the default would have to exceed it.
//
// The worst case (Plan.Need) is the values the buffer can hold plus a
// fixed part: ProcessBytes, SlotBytes per ring slot, and the intake queue
// (PendingLimits, PendingMessageBytes per queued message). The values are
// min(maxBytes, capacity × maxMessageBytes) for a ring and maxMessageBytes
// for the single-slot types. A ring whose maxBytes is unset gets the
// budget its limit leaves (Usable(limit) minus the fixed part), the limit
// being the Record's own or, without one, the ceiling; the budget is left
// out when capacity × maxMessageBytes fits anyway.
func Size(d Declared) (Plan, error) {
	if d.Ceiling <= 0 {
		d.Ceiling = DefaultCeiling
	}
	msgs, pendingBytes := PendingLimits(d.MaxMessageBytes)
	p := Plan{
		Slots:   d.Capacity * SlotBytes,
		Pending: pendingBytes + int64(msgs)*PendingMessageBytes,
		Process: ProcessBytes + max(0, d.MaxStreams-wire.DefaultMaxStreams)*StreamBytes,
	}
	fixed := p.Slots + p.Pending + p.Process
	ring := d.Capacity > 0
	full := d.MaxMessageBytes // one value
	if ring {
		full = d.Capacity * d.MaxMessageBytes
	}
	p.Values = full
	limit, source := d.Limit, SourceRecord
	if limit <= 0 {
		limit, source = d.Ceiling, SourceCeiling
	}
	switch {
	case ring && d.MaxBytes > 0:
		if d.MaxBytes < d.MaxMessageBytes {
			return p, &DoesNotFitError{Plan: p, Limit: limit, Source: source, BudgetBelowMessage: true, MaxBytes: d.MaxBytes, MaxMessageBytes: d.MaxMessageBytes}
		}
		p.Values = min(d.MaxBytes, full)
	case ring && fixed+full > Usable(limit):
		// No budget declared, and the whole ring does not fit: the budget
		// is what the limit leaves.
		p.Values = Usable(limit) - fixed
		if p.Values < d.MaxMessageBytes {
			p.Values = max(p.Values, 0)
			return p, &DoesNotFitError{Plan: p, Limit: limit, Source: source, NoRoomForAMessage: true, MaxMessageBytes: d.MaxMessageBytes}
		}
	}
	if ring && p.Values < full {
		p.MaxBytes = p.Values
	}
	if p.Need() > Usable(limit) {
		return p, &DoesNotFitError{Plan: p, Limit: limit, Source: source}
	}
	p.Limit = d.Limit
	if d.Limit <= 0 {
		p.Limit, p.Default = min(LimitFor(p.Need()), d.Ceiling), true
		p.Request = min(LimitFor(p.Steady()), p.Limit)
	}
	return p, nil
}

// Source names what sets the limit a buffer process would run with.
type Source string

const (
	// SourceRecord is the Record's own spec.resources.limits.memory.
	SourceRecord Source = "spec.resources.limits.memory"
	// SourceCeiling is the manager's --buffer-memory-ceiling, the largest
	// default limit.
	SourceCeiling Source = "the manager's --buffer-memory-ceiling"
)

// DoesNotFitError says that what a Record declares does not fit in the
// memory limit its buffer process would run with, with the numbers.
type DoesNotFitError struct {
	// Plan is the worst case as far as it was computed.
	Plan Plan
	// Limit is the limit it does not fit in, and Source what sets it.
	Limit  int64
	Source Source
	// NoRoomForAMessage: the Record sets no maxBytes, and what the limit
	// leaves for values is less than one message of MaxMessageBytes.
	NoRoomForAMessage bool
	// BudgetBelowMessage: the Record's maxBytes (MaxBytes) is less than
	// one message of MaxMessageBytes. (Admission refuses such a Record.)
	BudgetBelowMessage        bool
	MaxBytes, MaxMessageBytes int64
}

func (e *DoesNotFitError) Error() string {
	p := e.Plan
	fixed := fmt.Sprintf("%s for the process and %s for the intake queue", Format(p.Process), Format(p.Pending))
	if p.Slots > 0 {
		fixed = fmt.Sprintf("%s for the process, %s for the intake queue and %s for the ring's slots",
			Format(p.Process), Format(p.Pending), Format(p.Slots))
	}
	remedy := "lower spec.maxMessageBytes"
	if p.Slots > 0 {
		remedy = "lower spec.buffer.maxBytes, spec.buffer.capacity or spec.maxMessageBytes"
	}
	if e.Source == SourceCeiling {
		remedy += ", or set spec.resources.limits.memory"
	} else {
		remedy += ", or raise " + string(e.Source)
	}
	switch {
	case e.BudgetBelowMessage:
		return fmt.Sprintf("spec.buffer.maxBytes %s is less than spec.maxMessageBytes %s: the largest message taken in would not fit in the ring",
			Format(e.MaxBytes), Format(e.MaxMessageBytes))
	case e.NoRoomForAMessage:
		return fmt.Sprintf("a memory limit of %s (%s) holds %s, which leaves %s for values after %s: less than one message of spec.maxMessageBytes %s; %s",
			Format(e.Limit), e.Source, Format(Usable(e.Limit)), Format(p.Values), fixed, Format(e.MaxMessageBytes), remedy)
	}
	return fmt.Sprintf("the buffer process needs up to %s (%s of values, %s) and so a memory limit of %s, above %s of %s; %s",
		Format(p.Need()), Format(p.Values), fixed, Format(LimitFor(p.Need())), e.Source, Format(e.Limit), remedy)
}

// Is makes errors.Is(err, ErrDoesNotFit) true.
func (e *DoesNotFitError) Is(target error) bool { return target == ErrDoesNotFit }

// Format writes a byte size the way Kubernetes quantities read, exactly
// when it is a whole number of GiB, MiB or KiB ("64Mi"), else in MiB to
// one decimal ("48.4Mi"; "0.5Ki" below a MiB).
func Format(n int64) string {
	exact := func(unit int64) bool { return n != 0 && n%unit == 0 }
	unit, suffix := MiB, "Mi"
	switch {
	case exact(GiB):
		return strconv.FormatInt(n/GiB, 10) + "Gi"
	case exact(MiB):
		return strconv.FormatInt(n/MiB, 10) + "Mi"
	case n >= MiB:
	case exact(KiB):
		return strconv.FormatInt(n/KiB, 10) + "Ki"
	case n < KiB:
		return strconv.FormatInt(n, 10)
	default:
		unit, suffix = KiB, "Ki"
	}
	s := strconv.FormatFloat(float64(n)/float64(unit), 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + suffix
}

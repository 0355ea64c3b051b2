package consumerapi

import (
	"math/bits"
	"sync"
	"unsafe"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/wire"
)

// The sizes of a record's event cache. A ring's cache has a slot per value
// the ring holds, up to maxCacheSlots: streams further apart than that
// encode for themselves (they are near a lag anyway). The single-slot
// types hand out their newest values, so a few slots do. Only values of at
// most maxCachedData bytes are cached, and a slot's array is made for
// twice its first value's payload, so that a cache holds at most about
// maxCacheSlots × (2 × maxCachedData + 400 bytes): 2.5 MiB; 700 KiB for
// 128-byte readings. Larger values' encoding is dwarfed by writing them
// anyway.
const (
	maxCacheSlots   = 1024
	smallCacheSlots = 8
	maxCachedData   = 1 << 10
)

// eventCache holds the SSE events of a record's newest values, encoded
// once and copied by every stream that sends them: N streams of one record
// encode each value once, not N times. A slot is keyed by the value's
// sequence number, the instance that numbers the stream and the value's
// payload (its array and length), so that an event is never sent for a
// value it was not encoded from; a miss encodes the value into the slot,
// reusing its array, so that the cache allocates only while its slots
// are first used.
type eventCache struct {
	mask  uint64
	slots []eventSlot
}

type eventSlot struct {
	mu  sync.Mutex
	seq uint64
	// data is the payload's array as a number, not a pointer: a slot
	// must not keep an evicted value's payload alive (a ring's byte
	// budget counts only what the ring holds). Within one buffer a
	// sequence number is one value, so it only guards the key.
	data     uintptr
	size     int
	instance string
	event    []byte
	// A cache line of its own: streams copying neighbouring values from
	// two cores do not take each other's slot lock's line.
	_ [64]byte
}

func newEventCache(b buffer.Buffer[wire.Message]) *eventCache {
	n := smallCacheSlots
	if b.Type() == buffer.TypeSpmcRing {
		n = min(maxCacheSlots, 1<<bits.Len(uint(max(b.Stats().Capacity, 1)-1)))
	}
	return &eventCache{mask: uint64(n - 1), slots: make([]eventSlot, n)}
}

// appendEvent appends the event of value it numbered by instance, as
// wire.AppendValueEvent does.
func (c *eventCache) appendEvent(dst []byte, instance string, it *buffer.Item[wire.Message]) []byte {
	m := &it.Value
	if len(m.Data) > maxCachedData {
		return wire.AppendValueEvent(dst, instance, it.Seq, m)
	}
	s := &c.slots[it.Seq&c.mask]
	data := uintptr(unsafe.Pointer(unsafe.SliceData(m.Data)))
	s.mu.Lock()
	if s.seq != it.Seq || s.data != data || s.size != len(m.Data) || s.instance != instance || len(s.event) == 0 {
		if s.event == nil {
			// Room for this event and most others of the record at
			// once: about one allocation per slot.
			s.event = make([]byte, 0, 256+2*len(m.Data)+len(m.Subject)+len(m.Device)+len(instance))
		}
		s.event = wire.AppendValueEvent(s.event[:0], instance, it.Seq, m)
		s.seq, s.data, s.size, s.instance = it.Seq, data, len(m.Data), instance
	}
	dst = append(dst, s.event...)
	s.mu.Unlock()
	return dst
}

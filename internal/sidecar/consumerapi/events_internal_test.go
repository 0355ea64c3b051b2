package consumerapi

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/wire"
)

// The cache hands out exactly the event wire.AppendValueEvent encodes,
// for the value, sequence number and instance asked, whatever its slot
// held before.
func TestEventCacheAppendsTheValuesOwnEvent(t *testing.T) {
	ring, err := buffer.New[wire.Message](buffer.TypeSpmcRing, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	c := newEventCache(ring)
	if len(c.slots) != 4 {
		t.Fatalf("got %d slots for a ring of 4, want 4", len(c.slots))
	}
	now := time.Date(2026, 12, 8, 1, 2, 3, 4, time.UTC)
	item := func(seq uint64, data string) *buffer.Item[wire.Message] {
		return &buffer.Item[wire.Message]{Seq: seq, Value: wire.Message{Data: []byte(data), Received: now, Subject: "s", JSON: wire.IsJSON([]byte(data))}}
	}
	large := strings.Repeat("x", maxCachedData+1)
	cases := []struct {
		name, instance string
		it             *buffer.Item[wire.Message]
	}{
		{"first", "a", item(1, `{"v":1}`)},
		{"again", "a", item(1, `{"v":1}`)},
		{"another instance", "b", item(1, `{"v":1}`)},
		{"another value of the same number (another buffer)", "b", item(1, `{"v":2}`)},
		{"the same slot, the next round", "b", item(5, "raw\x00")},
		{"a value too large to cache", "b", item(6, large)},
	}
	for _, tc := range cases {
		want := wire.AppendValueEvent([]byte("before"), tc.instance, tc.it.Seq, &tc.it.Value)
		got := c.appendEvent([]byte("before"), tc.instance, tc.it)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, want)
		}
	}
}

// A hit copies the event and allocates nothing.
func TestEventCacheHitAllocatesNothing(t *testing.T) {
	ring, _ := buffer.New[wire.Message](buffer.TypeSpmcRing, 1024)
	defer ring.Close()
	c := newEventCache(ring)
	it := &buffer.Item[wire.Message]{Seq: 7, Value: wire.Message{Data: []byte(`{"v":1}`), Subject: "s", JSON: true}}
	dst := make([]byte, 0, 4096)
	dst = c.appendEvent(dst, "a", it)
	if n := testing.AllocsPerRun(100, func() { dst = c.appendEvent(dst[:0], "a", it) }); n != 0 {
		t.Errorf("got %v allocations per hit, want 0", n)
	}
}

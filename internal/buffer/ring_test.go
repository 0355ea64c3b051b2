package buffer

import (
	"context"
	"errors"
	"testing"
)

func newRing(t *testing.T, capacity int) *SpmcRing[int] {
	t.Helper()
	b, err := NewSpmcRing[int](capacity)
	if err != nil {
		t.Fatalf("NewSpmcRing(%d): got %v, want nil", capacity, err)
	}
	t.Cleanup(b.Close)
	return b
}

// pushRange pushes the values from..to (inclusive); with values equal to
// their expected sequence numbers, tests can tell both apart at a glance.
func pushRange(t *testing.T, b Buffer[int], from, to int) {
	t.Helper()
	for v := from; v <= to; v++ {
		mustPush(t, b, v)
	}
}

// wantSeqs receives seqs without waiting, each value equal to its seq.
func wantSeqs(t *testing.T, r Reader[int], from, to uint64) {
	t.Helper()
	for s := from; s <= to; s++ {
		wantItem(t, r, s, int(s))
	}
}

func TestSpmcRing(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"a capacity below one is refused", func(t *testing.T) {
			for _, c := range []int{0, -1} {
				if _, err := NewSpmcRing[int](c); !errors.Is(err, ErrInvalidCapacity) {
					t.Fatalf("NewSpmcRing(%d): got %v, want ErrInvalidCapacity", c, err)
				}
			}
		}},
		{"capacity is exact, not rounded up to a power of two", func(t *testing.T) {
			b := newRing(t, 5)
			pushRange(t, b, 1, 20)
			r := mustSubscribe(t, b, FromOldest())
			wantSeqs(t, r, 16, 20)
			wantErr(t, r, ErrEmpty)
			if st := b.Stats(); st.Capacity != 5 || st.Occupancy != 5 {
				t.Fatalf("Stats: got capacity %d occupancy %d, want 5 and 5", st.Capacity, st.Occupancy)
			}
		}},
		{"occupancy grows up to the capacity and readers do not consume", func(t *testing.T) {
			b := newRing(t, 4)
			r := mustSubscribe(t, b)
			pushRange(t, b, 1, 2)
			wantSeqs(t, r, 1, 2)
			if got := b.Stats().Occupancy; got != 2 {
				t.Fatalf("Occupancy: got %d, want 2", got)
			}
		}},
		{"a full ring evicts the oldest value", func(t *testing.T) {
			b := newRing(t, 3)
			pushRange(t, b, 1, 4)
			r := mustSubscribe(t, b, FromOldest())
			wantSeqs(t, r, 2, 4)
		}},
		{"overflow reports exactly how many values the reader missed, and it reads on", func(t *testing.T) {
			b := newRing(t, 4)
			r := mustSubscribe(t, b)
			pushRange(t, b, 1, 11) // 1..7 evicted, 8..11 retained
			wantLag(t, r, 7)
			wantSeqs(t, r, 8, 11)
			wantErr(t, r, ErrEmpty)
			mustPush(t, b, 12)
			wantSeqs(t, r, 12, 12)
			if st := b.Stats(); st.LagEvents != 1 || st.LaggedValues != 7 || st.Delivered != 5 {
				t.Fatalf("Stats: got %+v, want 1 lag event, 7 lagged values, 5 delivered", st)
			}
		}},
		{"a reader that lagged mid-way reports only what it missed", func(t *testing.T) {
			b := newRing(t, 3)
			r := mustSubscribe(t, b)
			pushRange(t, b, 1, 3)
			wantSeqs(t, r, 1, 2)
			pushRange(t, b, 4, 8) // the reader's next is 3; 3..5 evicted
			wantLag(t, r, 3)
			wantSeqs(t, r, 6, 8)
		}},
		{"a blocked receive of a lagged reader returns the lag", func(t *testing.T) {
			b := newRing(t, 2)
			r := mustSubscribe(t, b)
			pushRange(t, b, 1, 5)
			var lag *LaggedError
			if _, err := r.Recv(context.Background()); !errors.As(err, &lag) || lag.Missed != 3 {
				t.Fatalf("Recv: got %v, want a lag of 3", err)
			}
		}},
		{"two slow readers missing the same values count them twice", func(t *testing.T) {
			b := newRing(t, 2)
			r1, r2 := mustSubscribe(t, b), mustSubscribe(t, b)
			pushRange(t, b, 1, 5)
			wantLag(t, r1, 3)
			wantLag(t, r2, 3)
			if st := b.Stats(); st.LagEvents != 2 || st.LaggedValues != 6 {
				t.Fatalf("Stats: got %d lag events and %d lagged values, want 2 and 6", st.LagEvents, st.LaggedValues)
			}
		}},
		{"readers have independent cursors and never steal from each other", func(t *testing.T) {
			b := newRing(t, 8)
			fast, slow := mustSubscribe(t, b), mustSubscribe(t, b)
			pushRange(t, b, 1, 4)
			wantSeqs(t, fast, 1, 4)
			wantSeqs(t, slow, 1, 2)
			pushRange(t, b, 5, 6)
			wantSeqs(t, fast, 5, 6)
			wantSeqs(t, slow, 3, 6)
		}},
		{"a new reader sees only values pushed after it subscribed", func(t *testing.T) {
			b := newRing(t, 8)
			pushRange(t, b, 1, 3)
			r := mustSubscribe(t, b)
			wantErr(t, r, ErrEmpty)
			mustPush(t, b, 4)
			wantSeqs(t, r, 4, 4)
		}},
		{"a reader can start at the oldest retained value", func(t *testing.T) {
			b := newRing(t, 8)
			pushRange(t, b, 1, 3)
			r := mustSubscribe(t, b, FromOldest())
			wantSeqs(t, r, 1, 3)
		}},
		{"a reader starting at the oldest of an empty ring waits for the first value", func(t *testing.T) {
			b := newRing(t, 8)
			r := mustSubscribe(t, b, FromOldest())
			wantErr(t, r, ErrEmpty)
			mustPush(t, b, 1)
			wantSeqs(t, r, 1, 1)
		}},
		{"a reader resuming after a retained sequence loses nothing", func(t *testing.T) {
			b := newRing(t, 8)
			pushRange(t, b, 1, 6)
			r := mustSubscribe(t, b, AfterSeq(3))
			wantSeqs(t, r, 4, 6)
			wantErr(t, r, ErrEmpty)
		}},
		{"a reader resuming after the oldest retained sequence's predecessor loses nothing", func(t *testing.T) {
			b := newRing(t, 4)
			pushRange(t, b, 1, 10) // 7..10 retained
			r := mustSubscribe(t, b, AfterSeq(6))
			wantSeqs(t, r, 7, 10)
		}},
		{"a reader resuming after an evicted sequence is told the exact gap", func(t *testing.T) {
			b := newRing(t, 4)
			pushRange(t, b, 1, 10) // 7..10 retained
			r := mustSubscribe(t, b, AfterSeq(2))
			wantLag(t, r, 4) // 3, 4, 5, 6
			wantSeqs(t, r, 7, 10)
		}},
		{"resuming after sequence zero starts from the very first value", func(t *testing.T) {
			b := newRing(t, 4)
			pushRange(t, b, 1, 3)
			r := mustSubscribe(t, b, AfterSeq(0))
			wantSeqs(t, r, 1, 3)
			pushRange(t, b, 4, 9)
			r2 := mustSubscribe(t, b, AfterSeq(0))
			wantLag(t, r2, 5)
			wantSeqs(t, r2, 6, 9)
		}},
		{"a reader resuming after the newest sequence waits for the next value", func(t *testing.T) {
			b := newRing(t, 4)
			pushRange(t, b, 1, 3)
			r := mustSubscribe(t, b, AfterSeq(3))
			wantErr(t, r, ErrEmpty)
			mustPush(t, b, 4)
			wantSeqs(t, r, 4, 4)
		}},
		{"a reader resuming after a sequence the ring never produced starts after the newest", func(t *testing.T) {
			b := newRing(t, 4)
			pushRange(t, b, 1, 3)
			r := mustSubscribe(t, b, AfterSeq(1000))
			wantErr(t, r, ErrEmpty)
			mustPush(t, b, 4)
			wantSeqs(t, r, 4, 4)
		}},
		{"peek returns the newest retained value", func(t *testing.T) {
			b := newRing(t, 3)
			pushRange(t, b, 1, 7)
			if it, ok := b.Peek(); !ok || it.Seq != 7 || it.Value != 7 {
				t.Fatalf("Peek: got (%+v, %v), want seq 7", it, ok)
			}
		}},
		{"close delivers every retained value ahead of the cursor, lag included, then closed", func(t *testing.T) {
			b := newRing(t, 3)
			r := mustSubscribe(t, b)
			pushRange(t, b, 1, 5)
			b.Close()
			wantLag(t, r, 2)
			wantSeqs(t, r, 3, 5)
			wantErr(t, r, ErrClosed)
		}},
		{"a reader subscribed before close sees nothing new after it", func(t *testing.T) {
			b := newRing(t, 3)
			pushRange(t, b, 1, 2)
			r := mustSubscribe(t, b)
			b.Close()
			wantErr(t, r, ErrClosed)
		}},
		{"a ring of capacity one keeps only the newest value", func(t *testing.T) {
			b := newRing(t, 1)
			r := mustSubscribe(t, b)
			pushRange(t, b, 1, 3)
			wantLag(t, r, 2)
			wantSeqs(t, r, 3, 3)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func newBudgetRing(t *testing.T, capacity int, maxBytes int64, size func(int) int64) *SpmcRing[int] {
	t.Helper()
	b, err := NewSpmcRing(capacity, WithMaxBytes(maxBytes, size))
	if err != nil {
		t.Fatalf("NewSpmcRing(%d, WithMaxBytes(%d)): got %v, want nil", capacity, maxBytes, err)
	}
	t.Cleanup(b.Close)
	return b
}

// bytesOf3 makes every value 3 bytes; valueBytes makes each value its own
// size, so that a test reads its sizes off the values it pushes.
func bytesOf3(int) int64     { return 3 }
func valueBytes(v int) int64 { return int64(v) }

// wantRetained checks what a ring holds: the sequence numbers first..last,
// each value its seq (pushRange's values), and the budget's counters.
func wantRetained(t *testing.T, b *SpmcRing[int], first, last uint64, bytes int64) {
	t.Helper()
	st := b.Stats()
	occupancy := int(last - first + 1)
	if st.Occupancy != occupancy || st.Evicted != first-1 || st.Bytes != bytes {
		t.Fatalf("Stats: got occupancy %d, evicted %d, bytes %d; want %d, %d, %d", st.Occupancy, st.Evicted, st.Bytes, occupancy, first-1, bytes)
	}
	if st.Produced != st.Evicted+uint64(st.Occupancy) {
		t.Fatalf("Stats: produced %d, want evicted %d + occupancy %d", st.Produced, st.Evicted, st.Occupancy)
	}
	r := mustSubscribe(t, b, FromOldest())
	wantSeqs(t, r, first, last)
	wantErr(t, r, ErrEmpty)
}

// TestSpmcRingByteBudget checks the rules of a ring with a byte budget
// (docs/buffer-contract.md, "A byte budget"): the ring holds at most
// capacity values and at most maxBytes bytes, evicts the oldest when
// either would be exceeded, and counts and reports every eviction exactly.
func TestSpmcRingByteBudget(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"a budget below one byte or without a size function is refused", func(t *testing.T) {
			for _, opt := range []Option[int]{WithMaxBytes(0, bytesOf3), WithMaxBytes(-1, bytesOf3), WithMaxBytes[int](10, nil)} {
				if _, err := NewSpmcRing(4, opt); !errors.Is(err, ErrInvalidMaxBytes) {
					t.Fatalf("NewSpmcRing with an invalid budget: got %v, want ErrInvalidMaxBytes", err)
				}
			}
		}},
		{"the oldest values are evicted when the bytes would exceed the budget", func(t *testing.T) {
			b := newBudgetRing(t, 8, 10, bytesOf3)
			pushRange(t, b, 1, 4) // 12 bytes: 1 goes
			wantRetained(t, b, 2, 4, 9)
			if st := b.Stats(); st.MaxBytes != 10 || st.Capacity != 8 {
				t.Fatalf("Stats: got max bytes %d, capacity %d; want 10 and 8", st.MaxBytes, st.Capacity)
			}
		}},
		{"a reader whose unread values were evicted for bytes is told exactly how many it missed", func(t *testing.T) {
			b := newBudgetRing(t, 8, 10, bytesOf3)
			r := mustSubscribe(t, b)
			pushRange(t, b, 1, 7) // 5..7 retained: 1..4 evicted though the count allows 8
			wantLag(t, r, 4)
			wantSeqs(t, r, 5, 7)
			wantErr(t, r, ErrEmpty)
			if st := b.Stats(); st.LagEvents != 1 || st.LaggedValues != 4 || st.Evicted != 4 || st.Delivered != 3 {
				t.Fatalf("Stats: got %+v, want 1 lag event, 4 lagged values, 4 evicted, 3 delivered", st)
			}
		}},
		{"a reader that read part of the way lags only by what it had not read", func(t *testing.T) {
			b := newBudgetRing(t, 8, 10, bytesOf3)
			r := mustSubscribe(t, b)
			pushRange(t, b, 1, 3)
			wantSeqs(t, r, 1, 2)
			pushRange(t, b, 4, 6) // 4..6 retained; the reader's next, 3, is gone
			wantLag(t, r, 1)
			wantSeqs(t, r, 4, 6)
		}},
		{"a blocked receive of a reader that lagged for bytes returns the lag at once", func(t *testing.T) {
			b := newBudgetRing(t, 8, 6, bytesOf3)
			r := mustSubscribe(t, b)
			pushRange(t, b, 1, 5) // 4, 5 retained
			var lag *LaggedError
			if _, err := r.Recv(context.Background()); !errors.As(err, &lag) || lag.Missed != 3 {
				t.Fatalf("Recv: got %v, want a lag of 3", err)
			}
		}},
		{"count and bytes both bound the ring, whichever is tighter", func(t *testing.T) {
			b := newBudgetRing(t, 4, 10, valueBytes)
			r, r2 := mustSubscribe(t, b), mustSubscribe(t, b)
			pushRange(t, b, 1, 4) // 10 bytes, 4 values: both bounds reached, nothing evicted
			wantRetained(t, b, 1, 4, 10)
			wantSeqs(t, r2, 1, 1)
			mustPush(t, b, 5) // the count evicts 1; then 2 and 3 go for the bytes
			wantRetained(t, b, 4, 5, 9)
			wantLag(t, r, 3)
			wantSeqs(t, r, 4, 5)
			wantLag(t, r2, 2) // 2 and 3, though their slots were not overwritten
			wantSeqs(t, r2, 4, 5)
			b2 := newBudgetRing(t, 3, 100, bytesOf3)
			pushRange(t, b2, 1, 5) // the count alone evicts
			wantRetained(t, b2, 3, 5, 9)
		}},
		{"a value larger than the whole budget is refused, takes no sequence number and evicts nothing", func(t *testing.T) {
			b := newBudgetRing(t, 8, 10, valueBytes)
			mustPush(t, b, 3)
			err := b.Push(11)
			var tooLarge *TooLargeError
			if !errors.As(err, &tooLarge) || tooLarge.Size != 11 || tooLarge.MaxBytes != 10 || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Push(11) into a budget of 10: got %v, want a *TooLargeError{Size: 11, MaxBytes: 10} matching ErrTooLarge", err)
			}
			if st := b.Stats(); st.Produced != 1 || st.LastSeq != 1 || st.Evicted != 0 || st.Bytes != 3 {
				t.Fatalf("Stats after a refused value: got %+v, want produced 1, last seq 1, nothing evicted, 3 bytes", st)
			}
			mustPush(t, b, 2)
			if it, ok := b.Peek(); !ok || it.Seq != 2 || it.Value != 2 {
				t.Fatalf("Peek: got (%+v, %v), want seq 2 value 2: the refused value took no number", it, ok)
			}
		}},
		{"a value of exactly the budget evicts every other one and is held alone", func(t *testing.T) {
			b := newBudgetRing(t, 8, 10, valueBytes)
			mustPush(t, b, 3, 4, 10)
			st := b.Stats()
			if st.Occupancy != 1 || st.Evicted != 2 || st.Bytes != 10 {
				t.Fatalf("Stats: got %+v, want one value of 10 bytes held, 2 evicted", st)
			}
			r := mustSubscribe(t, b, FromOldest())
			wantItem(t, r, 3, 10)
		}},
		{"a reader waiting for the next value is not told it lagged when the value in its slot is evicted", func(t *testing.T) {
			b := newBudgetRing(t, 2, 3, bytesOf3)
			pushRange(t, b, 1, 2) // 1 is evicted from slot 0, where the reader's next value goes
			r := mustSubscribe(t, b)
			wantErr(t, r, ErrEmpty)
			res := recvAsync(context.Background(), r)
			waitParked(t, b, 1)
			mustPush(t, b, 3)
			if got := await(t, res); got.err != nil || got.it.Seq != 3 {
				t.Fatalf("Recv: got (%+v, %v), want seq 3", got.it, got.err)
			}
		}},
		{"a reader resuming after a sequence evicted for bytes is told the exact gap", func(t *testing.T) {
			b := newBudgetRing(t, 8, 10, bytesOf3)
			pushRange(t, b, 1, 7) // 5..7 retained
			r := mustSubscribe(t, b, AfterSeq(2))
			wantLag(t, r, 2) // 3, 4
			wantSeqs(t, r, 5, 7)
			r2 := mustSubscribe(t, b, AfterSeq(4))
			wantSeqs(t, r2, 5, 7)
		}},
		{"peek returns the newest value after evictions", func(t *testing.T) {
			b := newBudgetRing(t, 8, 10, bytesOf3)
			pushRange(t, b, 1, 7)
			if it, ok := b.Peek(); !ok || it.Seq != 7 || it.Value != 7 {
				t.Fatalf("Peek: got (%+v, %v), want seq 7", it, ok)
			}
		}},
		{"close delivers every value still within the budget, lag included, then closed", func(t *testing.T) {
			b := newBudgetRing(t, 8, 6, bytesOf3)
			r := mustSubscribe(t, b)
			pushRange(t, b, 1, 5)
			b.Close()
			wantLag(t, r, 3)
			wantSeqs(t, r, 4, 5)
			wantErr(t, r, ErrClosed)
		}},
		{"an evicted value is released at once, not when its slot is reused", func(t *testing.T) {
			b, err := NewSpmcRing(8, WithMaxBytes(2, func(*int) int64 { return 1 }))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			for i := range 3 {
				if err := b.Push(&i); err != nil {
					t.Fatal(err)
				}
			}
			// Value 1 (slot 0) was evicted for bytes; its slot comes round again only at value 9.
			b.slots[0].mu.Lock()
			held := b.slots[0].val
			b.slots[0].mu.Unlock()
			if held != nil {
				t.Fatalf("slot of the evicted value still holds %p, want nil so that the garbage collector can free it", held)
			}
		}},
		{"a ring without a budget counts what the count evicts", func(t *testing.T) {
			b := newRing(t, 3)
			pushRange(t, b, 1, 5)
			if st := b.Stats(); st.Evicted != 2 || st.Occupancy != 3 || st.Bytes != 0 || st.MaxBytes != 0 {
				t.Fatalf("Stats: got %+v, want 2 evicted, occupancy 3, no bytes counted and no budget", st)
			}
		}},
		{"New gives a ring its budget; the single-slot types ignore it", func(t *testing.T) {
			ring, err := New(TypeSpmcRing, 4, WithMaxBytes(6, bytesOf3))
			if err != nil {
				t.Fatal(err)
			}
			defer ring.Close()
			mustPush(t, ring, 1, 2, 3)
			if st := ring.Stats(); st.Evicted != 1 || st.MaxBytes != 6 {
				t.Fatalf("ring Stats: got %+v, want 1 evicted and max bytes 6", st)
			}
			for _, typ := range []Type{TypeSingleLatest, TypeMailbox} {
				b, err := New(typ, 0, WithMaxBytes(1, bytesOf3))
				if err != nil {
					t.Fatalf("New(%s) with a budget: got %v, want nil", typ, err)
				}
				mustPush(t, b, 1, 2)
				if st := b.Stats(); st.MaxBytes != 0 || st.Evicted != 0 {
					t.Fatalf("%s Stats: got %+v, want no budget and nothing evicted", typ, st)
				}
				b.Close()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

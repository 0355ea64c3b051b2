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

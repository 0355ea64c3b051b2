package buffer

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
)

func newExternalRing(t *testing.T, capacity int, opts ...Option[int]) *SpmcRing[int] {
	t.Helper()
	b, err := NewSpmcRing(capacity, append([]Option[int]{WithExternalSeq[int]()}, opts...)...)
	if err != nil {
		t.Fatalf("NewSpmcRing(%d, WithExternalSeq): got %v, want nil", capacity, err)
	}
	t.Cleanup(b.Close)
	return b
}

// pushSeqs pushes each seq with the value seq.
func pushSeqs(t *testing.T, b Buffer[int], seqs ...uint64) {
	t.Helper()
	for _, s := range seqs {
		if err := b.PushSeq(s, int(s)); err != nil {
			t.Fatalf("PushSeq(%d): got %v, want nil", s, err)
		}
	}
}

func TestExternalSeq(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"a reader before a gap of k deleted numbers lags by exactly k, then reads on", func(t *testing.T) {
			b := newExternalRing(t, 10)
			pushSeqs(t, b, 1, 2, 3, 7, 8)
			r := mustSubscribe(t, b, FromOldest())
			wantSeqs(t, r, 1, 3)
			wantLag(t, r, 3)
			wantSeqs(t, r, 7, 8)
			wantErr(t, r, ErrEmpty)
		}},
		{"a reader waiting at the end gets one lag for a whole gap pushed later", func(t *testing.T) {
			b := newExternalRing(t, 10)
			pushSeqs(t, b, 1, 2, 3)
			r := mustSubscribe(t, b)
			ch := recvAsync(context.Background(), r)
			waitParked(t, b, 1)
			pushSeqs(t, b, 9)
			var lagged *LaggedError
			if res := await(t, ch); !errors.As(res.err, &lagged) || lagged.Missed != 5 {
				t.Fatalf("Recv: got %v, want a lag of 5", res.err)
			}
			wantItem(t, r, 9, 9)
		}},
		{"the first value numbered S makes a reader resuming earlier lag by the numbers in between", func(t *testing.T) {
			b := newExternalRing(t, 5)
			pushSeqs(t, b, 100, 101, 102, 103, 104)
			r := mustSubscribe(t, b, AfterSeq(50))
			wantLag(t, r, 49)
			wantSeqs(t, r, 100, 104)
		}},
		{"a reader resuming exactly where the stream is reads on without lag", func(t *testing.T) {
			b := newExternalRing(t, 5)
			pushSeqs(t, b, 100, 101, 102)
			r := mustSubscribe(t, b, AfterSeq(100))
			wantSeqs(t, r, 101, 102)
			wantErr(t, r, ErrEmpty)
		}},
		{"a gap wider than the ring leaves only the value after it", func(t *testing.T) {
			b := newExternalRing(t, 3)
			pushSeqs(t, b, 1, 2, 3, 10)
			wantItem(t, mustSubscribe(t, b, FromOldest()), 10, 10)
			r := mustSubscribe(t, b, AfterSeq(3))
			wantLag(t, r, 6)
			wantItem(t, r, 10, 10)
		}},
		{"holes age out of the ring like values and are not counted as held", func(t *testing.T) {
			b := newExternalRing(t, 3)
			pushSeqs(t, b, 1, 3)
			if st := b.Stats(); st.Occupancy != 2 || st.Produced != 2 || st.Evicted != 0 {
				t.Fatalf("Stats: got occupancy %d produced %d evicted %d, want 2, 2, 0", st.Occupancy, st.Produced, st.Evicted)
			}
			pushSeqs(t, b, 4, 5)
			if st := b.Stats(); st.Occupancy != 3 || st.Produced != 4 || st.Evicted != 1 || st.LastSeq != 5 {
				t.Fatalf("Stats: got occupancy %d produced %d evicted %d last %d, want 3, 4, 1, 5", st.Occupancy, st.Produced, st.Evicted, st.LastSeq)
			}
			r := mustSubscribe(t, b, FromOldest())
			wantSeqs(t, r, 3, 5)
			wantErr(t, r, ErrEmpty)
		}},
		{"a reader up to date is not woken by an old hole in its next slot", func(t *testing.T) {
			b := newExternalRing(t, 3)
			pushSeqs(t, b, 1, 3, 4)
			r := mustSubscribe(t, b)
			wantErr(t, r, ErrEmpty)
			pushSeqs(t, b, 5)
			wantItem(t, r, 5, 5)
		}},
		{"a byte budget evicts past holes and keeps head on a value", func(t *testing.T) {
			b := newExternalRing(t, 10, WithMaxBytes(10, bytesOf3))
			pushSeqs(t, b, 1, 2, 5, 6)
			// 4 values of 3 bytes exceed 10: 1 goes; 2 then 5 fit with 6.
			r := mustSubscribe(t, b, AfterSeq(0))
			wantLag(t, r, 1)
			wantItem(t, r, 2, 2)
			wantLag(t, r, 2)
			wantSeqs(t, r, 5, 6)
			pushSeqs(t, b, 7)
			wantItem(t, mustSubscribe(t, b, FromOldest()), 5, 5)
		}},
		{"a number not after the newest is refused", func(t *testing.T) {
			b := newExternalRing(t, 3)
			pushSeqs(t, b, 5)
			for _, s := range []uint64{0, 4, 5} {
				if err := b.PushSeq(s, 1); !errors.Is(err, ErrSeqNotAfter) {
					t.Fatalf("PushSeq(%d): got %v, want ErrSeqNotAfter", s, err)
				}
			}
		}},
		{"a ring numbering its own values refuses PushSeq", func(t *testing.T) {
			if err := newRing(t, 3).PushSeq(1, 1); !errors.Is(err, ErrNotExternalSeq) {
				t.Fatalf("PushSeq: got %v, want ErrNotExternalSeq", err)
			}
		}},
		{"Push on an externally numbered ring numbers after the newest", func(t *testing.T) {
			b := newExternalRing(t, 3)
			pushSeqs(t, b, 7)
			mustPush(t, b, 8)
			r := mustSubscribe(t, b, FromOldest())
			wantSeqs(t, r, 7, 8)
		}},
		{"SingleLatest counts the numbers it never held as skipped, not produced", func(t *testing.T) {
			b := NewSingleLatest[int]()
			r := mustSubscribe(t, b)
			pushSeqs(t, b, 3)
			wantItem(t, r, 3, 3)
			pushSeqs(t, b, 4, 9)
			wantItem(t, r, 9, 9)
			if st := b.Stats(); st.Produced != 3 || st.LastSeq != 9 {
				t.Fatalf("Stats: got produced %d last %d, want 3 and 9", st.Produced, st.LastSeq)
			}
		}},
		{"a Mailbox holds the pending value with the stream's number", func(t *testing.T) {
			b := NewMailbox[int]()
			pushSeqs(t, b, 41, 42)
			wantItem(t, mustSubscribe(t, b), 42, 42)
			if err := b.PushSeq(42, 1); !errors.Is(err, ErrSeqNotAfter) {
				t.Fatalf("PushSeq(42) again: got %v, want ErrSeqNotAfter", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func TestMailboxWithTake(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		// take answers for each value taken.
		take func(Item[int]) error
		// want is what the first TryRecv returns; then the slot holds pending.
		wantSeq     uint64
		wantErr     error
		wantPending bool
	}{
		{"a take agreed to hands the value out", func(Item[int]) error { return nil }, 2, nil, false},
		{"a value gone elsewhere is not handed out and the mailbox is empty", func(Item[int]) error { return ErrGone }, 0, ErrEmpty, false},
		{"a failed take keeps the value for the next taker", func(Item[int]) error { return boom }, 0, ErrTakeFailed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked []uint64
			b := NewMailbox(WithTake(func(it Item[int]) error {
				asked = append(asked, it.Seq)
				return tt.take(it)
			}))
			pushSeqs(t, b, 2)
			r := mustSubscribe(t, b)
			it, err := r.TryRecv()
			if !errors.Is(err, tt.wantErr) || (err == nil && it.Seq != tt.wantSeq) {
				t.Fatalf("TryRecv: got %v, %v, want seq %d, %v", it, err, tt.wantSeq, tt.wantErr)
			}
			if len(asked) != 1 || asked[0] != 2 {
				t.Fatalf("take asked for %v, want [2]", asked)
			}
			if _, pending := b.Peek(); pending != tt.wantPending {
				t.Fatalf("Peek: got pending %v, want %v", pending, tt.wantPending)
			}
		})
	}
}

// TestExternalSeqAgainstAModel pushes random runs of numbers with random
// gaps into rings of random capacities and checks every receive of a
// reader against a model: the reader's next event is the smallest value it
// has not read that the ring still holds (the newest capacity numbers),
// preceded by one lag of exactly the numbers it skips.
func TestExternalSeqAgainstAModel(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 7))
		capacity := 1 + rng.IntN(6)
		b, err := NewSpmcRing(capacity, WithExternalSeq[int]())
		if err != nil {
			t.Fatal(err)
		}
		var (
			pushed []uint64 // the real values, ascending
			last   uint64
		)
		r, err := b.Subscribe(AfterSeq(uint64(rng.IntN(5))))
		if err != nil {
			t.Fatal(err)
		}
		// The model's cursor: right after the position subscribed to,
		// clamped to the newest value (none yet: 0).
		next := uint64(1)
		for step := range 60 {
			if rng.IntN(3) > 0 {
				last += 1 + uint64(rng.IntN(4)*rng.IntN(3))
				if err := b.PushSeq(last, int(last)); err != nil {
					t.Fatalf("seed %d step %d: PushSeq(%d): %v", seed, step, last, err)
				}
				pushed = append(pushed, last)
				continue
			}
			// The model: the smallest retained value at or after next.
			var want uint64
			for _, s := range pushed {
				if s >= next && last-s < uint64(capacity) {
					want = s
					break
				}
			}
			it, err := r.TryRecv()
			switch {
			case want == 0:
				if !errors.Is(err, ErrEmpty) {
					t.Fatalf("seed %d step %d: TryRecv: got %v %v, want ErrEmpty (cursor %d, pushed %v)", seed, step, it, err, next, pushed)
				}
				continue
			case want > next:
				var lagged *LaggedError
				if !errors.As(err, &lagged) || lagged.Missed != want-next {
					t.Fatalf("seed %d step %d: TryRecv: got %v %v, want a lag of %d (cursor %d, pushed %v, capacity %d)", seed, step, it, err, want-next, next, pushed, capacity)
				}
				if it, err = r.TryRecv(); err != nil {
					t.Fatalf("seed %d step %d: TryRecv after the lag: %v", seed, step, err)
				}
			}
			if err != nil || it.Seq != want || it.Value != int(want) {
				t.Fatalf("seed %d step %d: TryRecv: got %v %v, want %d (pushed %v)", seed, step, it, err, want, pushed)
			}
			next = want + 1
		}
		if st := b.Stats(); st.Produced != uint64(len(pushed)) || st.Produced != st.Evicted+uint64(st.Occupancy) {
			t.Fatalf("seed %d: Stats: produced %d evicted %d occupancy %d, want produced %d = evicted + occupancy", seed, st.Produced, st.Evicted, st.Occupancy, len(pushed))
		}
		b.Close()
	}
}

// TestExternalSeqConcurrentReaders races readers with a producer that
// skips numbers: every reader accounts for every number exactly once, as a
// value received or a value missed, and receives values in order.
func TestExternalSeqConcurrentReaders(t *testing.T) {
	const readers, pushes = 4, 20000
	b, err := NewSpmcRing(8, WithExternalSeq[int]())
	if err != nil {
		t.Fatal(err)
	}
	type tally struct{ received, missed, last uint64 }
	results := make(chan tally, readers)
	for range readers {
		r := mustSubscribe(t, b, FromOldest())
		go func() {
			var tl tally
			for {
				it, err := r.Recv(context.Background())
				var lagged *LaggedError
				switch {
				case errors.As(err, &lagged):
					tl.missed += lagged.Missed
					continue
				case errors.Is(err, ErrClosed):
					results <- tl
					return
				case err != nil || it.Seq <= tl.last || it.Value != int(it.Seq):
					// Out of order, or not its number: the mark below.
					results <- tally{last: ^uint64(0)}
					return
				}
				tl.received++
				tl.last = it.Seq
			}
		}()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var seq uint64
	for range pushes {
		seq += 1 + uint64(rng.IntN(3)/2*rng.IntN(5))
		if err := b.PushSeq(seq, int(seq)); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	for range readers {
		tl := <-results
		if tl.last == ^uint64(0) {
			t.Fatal("a reader received a value out of order or not its number")
		}
		if tl.received+tl.missed != seq {
			t.Errorf("reader: received %d + missed %d = %d, want every number up to %d", tl.received, tl.missed, tl.received+tl.missed, seq)
		}
	}
}

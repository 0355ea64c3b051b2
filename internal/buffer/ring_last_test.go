package buffer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// wantBackfill checks how many retained values r says it starts with.
func wantBackfill(t *testing.T, r Reader[int], want, wantLast uint64) {
	t.Helper()
	bf, ok := r.(Backfiller)
	if !ok {
		t.Fatalf("a %T is no Backfiller", r)
	}
	if n, last := bf.Backfill(); n != want || last != wantLast {
		t.Fatalf("Backfill: got %d through %d, want %d through %d", n, last, want, wantLast)
	}
}

func TestSpmcRingLast(t *testing.T) {
	tests := []struct {
		name string
		// capacity and pushed: the ring and how many values it took before
		// the reader subscribed with Last(last).
		capacity, pushed int
		last             uint64
		// The reader receives from..to at once, then nothing: backfill values.
		from, to uint64
	}{
		{name: "last n of a ring holding more starts at the newest n",
			capacity: 8, pushed: 20, last: 3, from: 18, to: 20},
		{name: "last n of a ring holding exactly n gives all it holds",
			capacity: 8, pushed: 20, last: 8, from: 13, to: 20},
		{name: "last n beyond what a full ring holds gives all it holds without a lag",
			capacity: 8, pushed: 20, last: 100, from: 13, to: 20},
		{name: "last n beyond what a ring that never filled holds gives all it holds",
			capacity: 8, pushed: 5, last: 6, from: 1, to: 5},
		{name: "last n of an empty ring gives nothing and then the live values",
			capacity: 8, pushed: 0, last: 5, from: 1, to: 0},
		{name: "last 1 is the newest value",
			capacity: 8, pushed: 20, last: 1, from: 20, to: 20},
		{name: "last 0 is the default start: only what comes next",
			capacity: 8, pushed: 20, last: 0, from: 21, to: 20},
		{name: "the largest n gives all the ring holds",
			capacity: 8, pushed: 20, last: ^uint64(0), from: 13, to: 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newRing(t, tc.capacity)
			pushRange(t, b, 1, tc.pushed)
			r := mustSubscribe(t, b, Last(tc.last))
			wantBackfill(t, r, tc.to+1-tc.from, uint64(tc.pushed))
			wantSeqs(t, r, tc.from, tc.to)
			wantErr(t, r, ErrEmpty)
			// Then live: the next value pushed, and nothing in between.
			next := tc.pushed + 1
			mustPush(t, b, next)
			wantItem(t, r, uint64(next), next)
		})
	}
}

func TestSpmcRingLastWithinAByteBudget(t *testing.T) {
	b := newBudgetRing(t, 8, 10, bytesOf3)
	pushRange(t, b, 1, 7) // 5..7 retained: the bytes, not the count, decide
	r := mustSubscribe(t, b, Last(5))
	wantBackfill(t, r, 3, 7)
	wantSeqs(t, r, 5, 7)
	wantErr(t, r, ErrEmpty)
}

func TestOtherStartsBackfillNothing(t *testing.T) {
	b := newRing(t, 4)
	pushRange(t, b, 1, 6)
	for name, opts := range map[string][]SubscribeOption{
		"default": nil, "from oldest": {FromOldest()}, "after a sequence": {AfterSeq(4)},
	} {
		t.Run(name, func(t *testing.T) {
			wantBackfill(t, mustSubscribe(t, b, opts...), 0, 0)
		})
	}
}

// TestSpmcRingLastUnderAConcurrentWriter subscribes with Last while a
// producer pushes as fast as it can: each reader must start with exactly
// the Backfill values before its first live one, in order, and the values
// it receives must be consecutive unless a LaggedError accounts for the
// gap exactly (a reader a whole ring behind the producer).
func TestSpmcRingLastUnderAConcurrentWriter(t *testing.T) {
	const capacity, readers, perReader = 64, 50, 200
	b := newRing(t, capacity)
	pushRange(t, b, 1, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	var wg sync.WaitGroup
	// Stop the producer before the test ends, however it ends: its
	// t.Errorf must not come after the test completed.
	defer wg.Wait()
	defer close(done)
	wg.Go(func() {
		for v := 11; ; v++ {
			select {
			case <-done:
				return
			default:
			}
			if err := b.Push(v); err != nil {
				t.Errorf("Push: %v", err)
				return
			}
		}
	})
	var lags int
	for i := range readers {
		last := uint64(1 + i%(capacity+8)) // up to beyond the capacity
		before := b.Stats().LastSeq
		r, err := b.Subscribe(Last(last))
		if err != nil {
			t.Fatal(err)
		}
		after := b.Stats().LastSeq
		n, newestThen := r.(Backfiller).Backfill()
		if newestThen < before || newestThen > after {
			t.Fatalf("Last(%d): got a newest sequence of %d at Subscribe, want between %d and %d", last, newestThen, before, after)
		}
		if n > last || n > capacity {
			t.Fatalf("Last(%d): got a backfill of %d, want at most %d and the capacity", last, n, last)
		}
		it, missed, nLags, err := recvAcrossLags(ctx, r)
		lags += nLags
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		if missed == 0 {
			// Without a lag the first value is the first of the backfill:
			// its newest one is first+n-1, which was the newest pushed at
			// Subscribe, between before and after.
			if want := newestThen - n + 1; it.Seq != want {
				t.Fatalf("Last(%d): got %d first, want %d: the first of %d through %d", last, it.Seq, want, n, newestThen)
			}
		}
		prev := it.Seq
		for range perReader {
			it, missed, n, err := recvAcrossLags(ctx, r)
			lags += n
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			if it.Seq != prev+missed+1 {
				t.Fatalf("after %d and lags of %d values in all: got %d, want %d", prev, missed, it.Seq, prev+missed+1)
			}
			prev = it.Seq
		}
		r.Close()
	}
	t.Logf("%d readers, %d lags under a producer that never waits", readers, lags)
}

// recvAcrossLags receives the next value, through any lag errors before it
// (a reader the producer laps more than once in a row gets one per lap),
// and returns the values they said were missed, in all, and their number.
func recvAcrossLags(ctx context.Context, r Reader[int]) (Item[int], uint64, int, error) {
	var missed uint64
	var lags int
	for {
		it, err := r.Recv(ctx)
		var lag *LaggedError
		if !errors.As(err, &lag) {
			return it, missed, lags, err
		}
		missed += lag.Missed
		lags++
	}
}

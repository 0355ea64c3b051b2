package buffer

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// readerLog is what one stress reader saw.
type readerLog struct {
	delivered, lagged, skipped uint64
	last                       uint64
	seqs                       []uint64 // Mailbox only
	err                        error    // first broken rule
	stoppedEarly               bool     // closed by the test before the end
}

// TestStress runs producers against many readers under the race detector
// and checks the accounting rules of each type.
func TestStress(t *testing.T) {
	values := 50000
	if testing.Short() {
		values = 2000
	}
	tests := []struct {
		name      string
		buf       func() Buffer[int]
		producers int
	}{
		{"a small ring with one producer and slow readers", func() Buffer[int] { b, _ := NewSpmcRing[int](16); return b }, 1},
		{"a ring with two concurrent producers", func() Buffer[int] { b, _ := NewSpmcRing[int](7); return b }, 2},
		// Sizes 0..7 against a budget of 20: values are evicted for their
		// bytes most of the time, for the count now and then.
		{"a ring with a byte budget and two concurrent producers", func() Buffer[int] {
			b, _ := NewSpmcRing(16, WithMaxBytes(20, func(int) int64 { return rand.Int64N(8) }))
			return b
		}, 2},
		{"a single-latest buffer", func() Buffer[int] { return NewSingleLatest[int]() }, 1},
		{"a mailbox with competing readers", func() Buffer[int] { return NewMailbox[int]() }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stress(t, tt.buf(), tt.producers, values)
		})
	}
}

func stress(t *testing.T, b Buffer[int], producers, values int) {
	t.Helper()
	const readers = 8
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	logs := make([]readerLog, readers)
	rs := make([]Reader[int], readers)
	for i := range rs {
		r, err := b.Subscribe(FromOldest())
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		rs[i] = r
	}
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() {
			l := &logs[i]
			defer r.Close()
			for n := 0; ; n++ {
				it, err := r.Recv(ctx)
				var lag *LaggedError
				switch {
				case errors.As(err, &lag):
					l.lagged += lag.Missed
					continue
				case errors.Is(err, ErrClosed):
					return
				case err != nil:
					l.err = err
					return
				}
				if it.Seq <= l.last {
					l.err = errors.New("sequence numbers not strictly increasing")
					return
				}
				l.skipped += it.Seq - l.last - 1
				l.last = it.Seq
				l.delivered++
				if b.Type() == TypeMailbox {
					l.seqs = append(l.seqs, it.Seq)
				}
				if i%2 == 1 && n%8 == 0 { // slow readers
					runtime.Gosched()
				}
			}
		})
	}
	// The last reader is closed by someone else mid-way.
	var closeEarly sync.Once
	logs[readers-1].stoppedEarly = true

	// Stats, Peek and Subscribe/Close churn run alongside the traffic.
	var stop atomic.Bool
	var side sync.WaitGroup
	side.Go(func() {
		for !stop.Load() {
			_ = b.Stats()
			_, _ = b.Peek()
			if r, err := b.Subscribe(); err == nil {
				_, _ = r.TryRecv()
				r.Close()
			}
			runtime.Gosched()
		}
	})

	var pushed atomic.Int64
	var prod sync.WaitGroup
	for range producers {
		prod.Go(func() {
			for n := pushed.Add(1); n <= int64(values); n = pushed.Add(1) {
				if n%16 == 0 { // let readers catch up now and then, so both the wake-up and the lag paths run
					runtime.Gosched()
				}
				if err := b.Push(1); err != nil {
					t.Errorf("Push: got %v, want nil", err)
					return
				}
				if n == int64(values/2) {
					closeEarly.Do(rs[readers-1].Close)
				}
			}
		})
	}
	prod.Wait()
	closeEarly.Do(rs[readers-1].Close)
	b.Close()
	wg.Wait()
	stop.Store(true)
	side.Wait()

	st := b.Stats()
	t.Logf("Stats: %+v", st)
	if st.Produced != uint64(values) {
		t.Fatalf("Produced: got %d, want %d", st.Produced, values)
	}
	var delivered, lagged, skipped uint64
	seen := map[uint64]bool{}
	for i, l := range logs {
		if l.err != nil {
			t.Fatalf("reader %d: %v", i, l.err)
		}
		delivered += l.delivered
		lagged += l.lagged
		skipped += l.skipped
		for _, s := range l.seqs {
			if seen[s] {
				t.Fatalf("reader %d: value %d was delivered to two readers", i, s)
			}
			seen[s] = true
		}
		if l.stoppedEarly {
			continue
		}
		switch b.Type() {
		case TypeSpmcRing:
			if got := l.delivered + l.lagged; got != uint64(values) {
				t.Fatalf("reader %d: delivered %d + lagged %d = %d, want %d", i, l.delivered, l.lagged, got, values)
			}
		case TypeSingleLatest:
			if l.last != uint64(values) || l.delivered+l.skipped != uint64(values) {
				t.Fatalf("reader %d: last %d, delivered %d + skipped %d, want last %d and a sum of %d", i, l.last, l.delivered, l.skipped, values, values)
			}
		}
	}
	if st.Delivered < delivered {
		// The churn readers add to Delivered too, never take from it.
		t.Fatalf("Delivered: got %d, want at least the %d the readers counted", st.Delivered, delivered)
	}
	switch b.Type() {
	case TypeSpmcRing:
		if st.LaggedValues < lagged {
			t.Fatalf("LaggedValues: got %d, want at least %d", st.LaggedValues, lagged)
		}
		if st.Evicted+uint64(st.Occupancy) != st.Produced || st.Bytes > st.MaxBytes {
			t.Fatalf("ring: evicted %d + occupancy %d, want produced %d; bytes %d, want at most %d", st.Evicted, st.Occupancy, st.Produced, st.Bytes, st.MaxBytes)
		}
	case TypeSingleLatest:
		if st.Skipped < skipped {
			t.Fatalf("Skipped: got %d, want at least %d", st.Skipped, skipped)
		}
	case TypeMailbox:
		if got := st.Delivered + st.Overwrites; got != uint64(values) || st.Occupancy != 0 {
			t.Fatalf("Mailbox: delivered %d + overwrites %d = %d, occupancy %d; want %d and 0", st.Delivered, st.Overwrites, got, st.Occupancy, values)
		}
	}
	if st.Subscribers != 0 {
		t.Fatalf("Subscribers after every reader closed: got %d, want 0", st.Subscribers)
	}
}

// TestStressBursts has many readers wait, again and again, for the last
// value of a burst, the way the concurrent benchmark does: a reader that
// misses a single wake-up stalls the test.
func TestStressBursts(t *testing.T) {
	const readers, burst = 16, 64
	bursts := 1000
	if testing.Short() {
		bursts = 100
	}
	for _, bt := range buffers {
		t.Run(bt.name, func(t *testing.T) {
			b := bt.new()
			signals := readers // every reader sees every burst's last value
			if bt.typ == TypeMailbox {
				signals = 1 // whoever takes it
			}
			caughtUp := make(chan struct{}, readers)
			var wg sync.WaitGroup
			for range readers {
				r := mustSubscribe(t, b)
				wg.Go(func() {
					for {
						it, err := r.Recv(context.Background())
						if errors.Is(err, ErrClosed) {
							return
						}
						if err == nil && it.Seq%burst == 0 {
							caughtUp <- struct{}{}
						}
					}
				})
			}
			defer wg.Wait()
			defer b.Close()
			for i := 1; i <= bursts*burst; i++ {
				mustPush(t, b, i)
				if i%burst != 0 {
					continue
				}
				for k := range signals {
					select {
					case <-caughtUp:
					case <-time.After(10 * time.Second):
						t.Fatalf("after value %d: %d of %d readers caught up, the others missed a wake-up", i, k, signals)
					}
				}
			}
		})
	}
}

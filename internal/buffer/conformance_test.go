package buffer

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// buffers builds one buffer of each type for the conformance suite, and a
// ring with a byte budget, which must keep every common rule too. The rings
// are big enough that the common rules never make them lag.
var buffers = []struct {
	name string
	typ  Type
	new  func() Buffer[int]
}{
	{"SpmcRing", TypeSpmcRing, func() Buffer[int] {
		b, err := NewSpmcRing[int](8)
		if err != nil {
			panic(err)
		}
		return b
	}},
	{"SpmcRing with a byte budget", TypeSpmcRing, func() Buffer[int] {
		b, err := NewSpmcRing(8, WithMaxBytes(64, func(int) int64 { return 8 }))
		if err != nil {
			panic(err)
		}
		return b
	}},
	{"SingleLatest", TypeSingleLatest, func() Buffer[int] { return NewSingleLatest[int]() }},
	{"Mailbox", TypeMailbox, func() Buffer[int] { return NewMailbox[int]() }},
}

// TestConformance checks the rules that the contract states for all three
// types, against each of them.
func TestConformance(t *testing.T) {
	rules := []struct {
		name string
		run  func(t *testing.T, b Buffer[int])
	}{
		{"push never fails while the buffer is open", func(t *testing.T, b Buffer[int]) {
			mustSubscribe(t, b) // a reader that never reads must not slow or fail the producer
			for i := range 1000 {
				if err := b.Push(i); err != nil {
					t.Fatalf("Push(%d): got %v, want nil", i, err)
				}
			}
		}},
		{"push after close is an error, not a panic", func(t *testing.T, b Buffer[int]) {
			b.Close()
			if err := b.Push(1); !errors.Is(err, ErrClosed) {
				t.Fatalf("Push after Close: got %v, want ErrClosed", err)
			}
		}},
		{"subscribe after close is an error", func(t *testing.T, b Buffer[int]) {
			b.Close()
			if _, err := b.Subscribe(); !errors.Is(err, ErrClosed) {
				t.Fatalf("Subscribe after Close: got %v, want ErrClosed", err)
			}
		}},
		{"close is idempotent", func(t *testing.T, b Buffer[int]) {
			r := mustSubscribe(t, b)
			b.Close()
			b.Close()
			r.Close()
			r.Close()
		}},
		{"a receive with nothing to read reports empty", func(t *testing.T, b Buffer[int]) {
			r := mustSubscribe(t, b)
			wantErr(t, r, ErrEmpty)
		}},
		{"values pushed after subscribing are received with sequence numbers from 1", func(t *testing.T, b Buffer[int]) {
			r := mustSubscribe(t, b)
			for i := 1; i <= 3; i++ {
				mustPush(t, b, 10*i)
				wantItem(t, r, uint64(i), 10*i)
			}
			wantErr(t, r, ErrEmpty)
		}},
		{"a blocked receive returns the next pushed value", func(t *testing.T, b Buffer[int]) {
			r := mustSubscribe(t, b)
			res := recvAsync(context.Background(), r)
			waitParked(t, b, 1)
			mustPush(t, b, 42)
			got := await(t, res)
			if got.err != nil || got.it.Value != 42 || got.it.Seq != 1 {
				t.Fatalf("Recv: got (%+v, %v), want seq 1 value 42", got.it, got.err)
			}
			if n := hubOf(t, b).waiters.n.Load(); n != 0 {
				t.Fatalf("parked readers after the wake-up: got %d, want 0", n)
			}
		}},
		{"a reader woken for a value it already read still wakes for the next one", func(t *testing.T, b Buffer[int]) {
			// Regression: a producer can take a reader out of the wait list
			// and signal it just after the reader joined, for a value the
			// reader has already read. The reader must not lose its place.
			r := mustSubscribe(t, b)
			h := hubOf(t, b)
			var once sync.Once
			h.testHookParked = func() { once.Do(h.waiters.wakeAll) }
			res := recvAsync(context.Background(), r)
			waitParked(t, b, 1)
			mustPush(t, b, 3)
			if got := await(t, res); got.err != nil || got.it.Value != 3 {
				t.Fatalf("Recv: got (%+v, %v), want value 3", got.it, got.err)
			}
		}},
		{"a value handed out while another goroutine closes the reader is counted once", func(t *testing.T, b Buffer[int]) {
			// Regression: Close folds the reader's count into the buffer's;
			// a receive that took its value just before and counted it just
			// after lost that count (a TestStress failure, 1 in 50000).
			r := mustSubscribe(t, b, FromOldest())
			mustPush(t, b, 1)
			h := hubOf(t, b)
			h.testHookHandOut = r.Close
			wantItem(t, r, 1, 1)
			h.testHookHandOut = nil
			if st := b.Stats(); st.Delivered != 1 || st.Subscribers != 0 {
				t.Fatalf("Stats after the receive and the close: got %d delivered, %d subscribers; want 1 and 0", st.Delivered, st.Subscribers)
			}
			wantErr(t, r, ErrClosed)
			if got := b.Stats().Delivered; got != 1 {
				t.Fatalf("Delivered after a receive on the closed reader: got %d, want 1", got)
			}
		}},
		{"a blocked receive honours context cancellation", func(t *testing.T, b Buffer[int]) {
			r := mustSubscribe(t, b)
			ctx, cancel := context.WithCancel(context.Background())
			res := recvAsync(ctx, r)
			waitParked(t, b, 1)
			cancel()
			if got := await(t, res); !errors.Is(got.err, context.Canceled) {
				t.Fatalf("Recv after cancel: got %v, want context.Canceled", got.err)
			}
			if n := hubOf(t, b).waiters.n.Load(); n != 0 {
				t.Fatalf("parked readers after cancel: got %d, want 0", n)
			}
			// The reader is still usable.
			mustPush(t, b, 7)
			wantItem(t, r, 1, 7)
		}},
		{"a receive with an expired deadline and nothing to read returns the context error", func(t *testing.T, b Buffer[int]) {
			r := mustSubscribe(t, b)
			ctx, cancel := context.WithTimeout(context.Background(), 0)
			defer cancel()
			if _, err := r.Recv(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Recv: got %v, want context.DeadlineExceeded", err)
			}
		}},
		{"unsubscribing frees a parked reader at once and forgets it", func(t *testing.T, b Buffer[int]) {
			r := mustSubscribe(t, b)
			res := recvAsync(context.Background(), r)
			waitParked(t, b, 1)
			r.Close()
			if got := await(t, res); !errors.Is(got.err, ErrClosed) {
				t.Fatalf("Recv after Reader.Close: got %v, want ErrClosed", got.err)
			}
			if n := hubOf(t, b).waiters.n.Load(); n != 0 {
				t.Fatalf("parked readers: got %d, want 0", n)
			}
			if got := b.Stats().Subscribers; got != 0 {
				t.Fatalf("Subscribers: got %d, want 0", got)
			}
			mustPush(t, b, 1)
			wantErr(t, r, ErrClosed)
		}},
		{"closing the buffer wakes a parked reader with closed", func(t *testing.T, b Buffer[int]) {
			r := mustSubscribe(t, b)
			res := recvAsync(context.Background(), r)
			waitParked(t, b, 1)
			b.Close()
			if got := await(t, res); !errors.Is(got.err, ErrClosed) {
				t.Fatalf("Recv after Close: got %v, want ErrClosed", got.err)
			}
		}},
		{"close delivers what remains, then closed", func(t *testing.T, b Buffer[int]) {
			r := mustSubscribe(t, b)
			mustPush(t, b, 5)
			b.Close()
			wantItem(t, r, 1, 5)
			wantErr(t, r, ErrClosed)
			if _, err := r.Recv(context.Background()); !errors.Is(err, ErrClosed) {
				t.Fatalf("Recv after draining a closed buffer: got %v, want ErrClosed", err)
			}
		}},
		{"peek shows the current value without consuming it", func(t *testing.T, b Buffer[int]) {
			if it, ok := b.Peek(); ok {
				t.Fatalf("Peek on an empty buffer: got %+v, want nothing", it)
			}
			r := mustSubscribe(t, b)
			mustPush(t, b, 9)
			for range 2 {
				if it, ok := b.Peek(); !ok || it.Seq != 1 || it.Value != 9 {
					t.Fatalf("Peek: got (%+v, %v), want seq 1 value 9", it, ok)
				}
			}
			wantItem(t, r, 1, 9)
		}},
		{"stats count produced, delivered, subscribers and the last sequence", func(t *testing.T, b Buffer[int]) {
			r := mustSubscribe(t, b)
			mustPush(t, b, 1, 2)
			_, _ = r.TryRecv()
			st := b.Stats()
			if st.Type != b.Type() || st.Produced != 2 || st.LastSeq != 2 || st.Delivered != 1 || st.Subscribers != 1 {
				t.Fatalf("Stats: got %+v, want type %s, produced 2, last seq 2, delivered 1, 1 subscriber", st, b.Type())
			}
			r.Close()
			st = b.Stats()
			if st.Subscribers != 0 || st.Delivered != 1 {
				t.Fatalf("Stats after Reader.Close: got %+v, want 0 subscribers and delivered still 1", st)
			}
		}},
		{"steady-state push and receive allocate nothing", func(t *testing.T, b Buffer[int]) {
			r := mustSubscribe(t, b)
			ctx := context.Background()
			allocs := testing.AllocsPerRun(1000, func() {
				_ = b.Push(1)
				_, _ = r.Recv(ctx)
				_, _ = r.TryRecv()
			})
			if allocs != 0 {
				t.Fatalf("allocations per push and receive: got %v, want 0", allocs)
			}
		}},
		{"a parked receive wakes without allocating", func(t *testing.T, b Buffer[int]) {
			r := mustSubscribe(t, b)
			// Warm up the wait list so it has its backing array.
			res := recvAsync(context.Background(), r)
			waitParked(t, b, 1)
			mustPush(t, b, 1)
			await(t, res)
			h := hubOf(t, b)
			allocs := testing.AllocsPerRun(100, func() {
				rc := coreOf(t, r)
				h.waiters.add(rc)
				h.waiters.wakeAll()
				rc.drain()
			})
			if allocs != 0 {
				t.Fatalf("allocations per park and wake: got %v, want 0", allocs)
			}
		}},
	}
	for _, bt := range buffers {
		t.Run(bt.name, func(t *testing.T) {
			for _, rule := range rules {
				t.Run(rule.name, func(t *testing.T) {
					b := bt.new()
					t.Cleanup(b.Close)
					if b.Type() != bt.typ {
						t.Fatalf("Type: got %s, want %s", b.Type(), bt.typ)
					}
					rule.run(t, b)
				})
			}
		})
	}
}

func TestNew(t *testing.T) {
	for _, typ := range []Type{TypeSpmcRing, TypeSingleLatest, TypeMailbox} {
		b, err := New[string](typ, 3)
		if err != nil {
			t.Fatalf("New(%s, 3): got %v, want nil", typ, err)
		}
		if b.Type() != typ {
			t.Fatalf("New(%s, 3).Type(): got %s", typ, b.Type())
		}
		if got, want := b.Stats().Capacity, map[Type]int{TypeSpmcRing: 3}[typ]; want != 0 && got != want {
			t.Fatalf("capacity: got %d, want %d", got, want)
		}
		b.Close()
	}
	if _, err := New[int](TypeSpmcRing, 0); !errors.Is(err, ErrInvalidCapacity) {
		t.Fatalf("New(SpmcRing, 0): got %v, want ErrInvalidCapacity", err)
	}
	if _, err := New[int]("Queue", 1); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("New(Queue): got %v, want ErrUnknownType", err)
	}
	// The single-slot types ignore the capacity, whatever it is.
	if _, err := New[int](TypeMailbox, 0); err != nil {
		t.Fatalf("New(Mailbox, 0): got %v, want nil", err)
	}
	if typ, err := ParseType("SingleLatest"); err != nil || typ != TypeSingleLatest {
		t.Fatalf("ParseType(SingleLatest): got (%s, %v)", typ, err)
	}
	if _, err := ParseType("singlelatest"); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("ParseType(singlelatest): got %v, want ErrUnknownType", err)
	}
	for _, typ := range Types() {
		if got, err := ParseType(string(typ)); err != nil || got != typ {
			t.Fatalf("ParseType(%s): got (%s, %v), want (%s, nil)", typ, got, err, typ)
		}
	}
	if got := len(Types()); got != 3 {
		t.Fatalf("Types: got %d types, want the contract's 3", got)
	}
}

package buffer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// payload is the benchmarks' value: 32 bytes, copied by value like a small
// telemetry record.
type payload [32]byte

var readerCounts = []int{1, 4, 16}

// payloads are the values the benchmarks push, value i%256 at step i, so a
// reader can check what it got. They are built once: setting a byte of a
// value just before pushing it would make the CPU stall on the next read
// of the whole value, which would measure the benchmark, not the buffer.
var payloads = func() (ps [256]payload) {
	for i := range ps {
		ps[i][0] = byte(i)
	}
	return ps
}()

// chanCapacity is the buffer of the baseline channels. The lockstep
// benchmark never holds more than one value per channel; the concurrent one
// lets a channel run this far ahead before it blocks the producer.
const chanCapacity = 64

// reportCPU reports the process's CPU time per op since start, beside the
// wall time that ns/op measures. Run it deferred, after the loop.
func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

func newBench(b *testing.B, typ Type) Buffer[payload] {
	b.Helper()
	buf, err := New[payload](typ, 1024)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(buf.Close)
	return buf
}

func subscribeN(b *testing.B, buf Buffer[payload], n int) []Reader[payload] {
	b.Helper()
	rs := make([]Reader[payload], n)
	for i := range rs {
		r, err := buf.Subscribe()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(r.Close)
		rs[i] = r
	}
	return rs
}

// BenchmarkPushRecv measures push to receive in one goroutine, the way the
// contract's reference figures were taken (tokio, one thread). One op is
// one push and its delivery: to every reader for SpmcRing and SingleLatest
// (fan-out), to one reader, in turn, for Mailbox (take). Each buffer runs
// beside the Go channel setup that does the same work: a channel per reader
// for fan-out ("chan"), one channel shared by the readers for take
// ("chanShared").
func BenchmarkPushRecv(b *testing.B) {
	ctx := context.Background()
	for _, n := range readerCounts {
		for _, typ := range []Type{TypeSpmcRing, TypeSingleLatest} {
			b.Run(fmt.Sprintf("type=%s/readers=%d", typ, n), func(b *testing.B) {
				buf := newBench(b, typ)
				rs := subscribeN(b, buf, n)
				b.ReportAllocs()
				defer reportCPU(b, cpuTime())
				for i := 0; b.Loop(); i++ {
					_ = buf.Push(payloads[byte(i)])
					for _, r := range rs {
						if it, err := r.Recv(ctx); err != nil || it.Value[0] != byte(i) {
							b.Fatalf("Recv: got (%v, %v)", it.Value[0], err)
						}
					}
				}
			})
		}
		b.Run(fmt.Sprintf("type=chan/readers=%d", n), func(b *testing.B) {
			chs := make([]chan payload, n)
			for i := range chs {
				chs[i] = make(chan payload, chanCapacity)
			}
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			for i := 0; b.Loop(); i++ {
				for _, ch := range chs {
					ch <- payloads[byte(i)]
				}
				for _, ch := range chs {
					if got := <-ch; got[0] != byte(i) {
						b.Fatalf("receive: got %v", got[0])
					}
				}
			}
		})
		b.Run(fmt.Sprintf("type=%s/readers=%d", TypeMailbox, n), func(b *testing.B) {
			buf := newBench(b, TypeMailbox)
			rs := subscribeN(b, buf, n)
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			for i := 0; b.Loop(); i++ {
				_ = buf.Push(payloads[byte(i)])
				if it, err := rs[i%n].Recv(ctx); err != nil || it.Value[0] != byte(i) {
					b.Fatalf("Recv: got (%v, %v)", it.Value[0], err)
				}
			}
		})
		if n == 1 {
			benchSlots(b)
		}
		b.Run(fmt.Sprintf("type=chanShared/readers=%d", n), func(b *testing.B) {
			// With one goroutine, which reader takes makes no difference to
			// a channel: this is one send and one receive.
			ch := make(chan payload, chanCapacity)
			b.ReportAllocs()
			defer reportCPU(b, cpuTime())
			for i := 0; b.Loop(); i++ {
				ch <- payloads[byte(i)]
				if got := <-ch; got[0] != byte(i) {
					b.Fatalf("receive: got %v", got[0])
				}
			}
		})
	}
}

// mutexSlot is the simplest Mailbox: one value behind a mutex, taken by a
// receive, with no sequence number, counter, wake-up or interface. It is
// the floor the issue measures the Mailbox against.
type mutexSlot struct {
	mu  sync.Mutex
	has bool
	v   payload
}

func (s *mutexSlot) put(v payload) {
	s.mu.Lock()
	s.v, s.has = v, true
	s.mu.Unlock()
}

func (s *mutexSlot) take() (v payload, ok bool) {
	s.mu.Lock()
	v, ok = s.v, s.has
	s.has = false
	s.mu.Unlock()
	return v, ok
}

// ifaceFloor is a Buffer and a Reader with no synchronisation at all (not
// safe for concurrent use; the lockstep benchmark has one goroutine): a
// push stores the value and a receive returns it, through the same Buffer
// and Reader interfaces and the same Item[payload] result as the real
// buffers. Its time is what the API's shape costs before any atomic: two
// dynamic calls and the copies of a 40-byte Item.
type ifaceFloor struct{ it Item[payload] }

func (f *ifaceFloor) Push(v payload) error                        { f.it.Seq++; f.it.Value = v; return nil }
func (f *ifaceFloor) Recv(context.Context) (Item[payload], error) { return f.it, nil }

// newIfaceFloor hides the concrete type, as New does, so that the
// compiler cannot devirtualise the calls.
//
//go:noinline
func newIfaceFloor() (interface{ Push(payload) error }, interface {
	Recv(context.Context) (Item[payload], error)
}) {
	f := &ifaceFloor{}
	return f, f
}

// benchSlots runs the one-reader baselines beside the channels: the mutex
// slot, a slot in one atomic.Pointer swapped in and out (the values live
// in payloads, so it allocates nothing), and the interface floor.
func benchSlots(b *testing.B) {
	b.Run("type=mutexSlot/readers=1", func(b *testing.B) {
		var s mutexSlot
		b.ReportAllocs()
		defer reportCPU(b, cpuTime())
		for i := 0; b.Loop(); i++ {
			s.put(payloads[byte(i)])
			if got, ok := s.take(); !ok || got[0] != byte(i) {
				b.Fatalf("take: got (%v, %v)", got[0], ok)
			}
		}
	})
	b.Run("type=swapSlot/readers=1", func(b *testing.B) {
		var s atomic.Pointer[payload]
		b.ReportAllocs()
		defer reportCPU(b, cpuTime())
		for i := 0; b.Loop(); i++ {
			s.Swap(&payloads[byte(i)])
			if got := s.Swap(nil); got == nil || got[0] != byte(i) {
				b.Fatalf("take: got %v", got)
			}
		}
	})
	b.Run("type=ifaceFloor/readers=1", func(b *testing.B) {
		p, r := newIfaceFloor()
		ctx := context.Background()
		b.ReportAllocs()
		defer reportCPU(b, cpuTime())
		for i := 0; b.Loop(); i++ {
			_ = p.Push(payloads[byte(i)])
			if it, err := r.Recv(ctx); err != nil || it.Value[0] != byte(i) {
				b.Fatalf("Recv: got (%v, %v)", it.Value[0], err)
			}
		}
	})
}

// burst is how many values the concurrent benchmark's producer pushes
// before it waits for the readers to catch up. It is below the ring's
// capacity and the channels' buffer, so neither a ring reader nor the
// channel producer ever has to lag or wait within a burst.
const burst = 64

// BenchmarkPushRecvConcurrent runs the producer and each reader in their
// own goroutines, as the sidecar does, so it includes waking parked
// readers. One op is one push; the producer pushes bursts of 64 values and
// then waits until the readers have seen the burst's last value (fan-out:
// every reader; Mailbox and chanShared: whichever reader takes it). A ring
// reader sees every value; SingleLatest readers skip values that were
// replaced before they looked, and Mailbox values are overwritten when no
// reader is quick enough: delivered/op and lost/op say how much of that
// happened, beside channels that deliver everything.
func BenchmarkPushRecvConcurrent(b *testing.B) {
	for _, n := range readerCounts {
		for _, typ := range []Type{TypeSpmcRing, TypeSingleLatest} {
			b.Run(fmt.Sprintf("type=%s/readers=%d", typ, n), func(b *testing.B) {
				benchConcurrentBuffer(b, typ, n, n)
			})
		}
		b.Run(fmt.Sprintf("type=chan/readers=%d", n), func(b *testing.B) {
			benchConcurrentChan(b, n, false)
		})
		b.Run(fmt.Sprintf("type=%s/readers=%d", TypeMailbox, n), func(b *testing.B) {
			benchConcurrentBuffer(b, TypeMailbox, n, 1)
		})
		b.Run(fmt.Sprintf("type=chanShared/readers=%d", n), func(b *testing.B) {
			benchConcurrentChan(b, n, true)
		})
	}
}

// benchConcurrentBuffer: n readers, of which signals report the end of
// each burst (n for fan-out, 1 for take).
func benchConcurrentBuffer(b *testing.B, typ Type, n, signals int) {
	ctx := context.Background()
	buf, err := New[payload](typ, 1024)
	if err != nil {
		b.Fatal(err)
	}
	rs := subscribeN(b, buf, n)
	caughtUp := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Go(func() {
			for {
				it, err := r.Recv(ctx)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err == nil && it.Seq%burst == 0 {
					caughtUp <- struct{}{}
				}
			}
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	for i := 1; i <= b.N; i++ {
		_ = buf.Push(payloads[byte(i)])
		if i%burst == 0 {
			for range signals {
				<-caughtUp
			}
		}
	}
	buf.Close()
	wg.Wait()
	b.StopTimer()
	reportCPU(b, start)
	st := buf.Stats()
	b.ReportMetric(float64(st.Delivered)/float64(b.N), "delivered/op")
	b.ReportMetric(float64(st.LaggedValues+st.Skipped+st.Overwrites)/float64(b.N), "lost/op")
}

// benchConcurrentChan is the channel setup doing the same work: a channel
// per reader (fan-out) or one channel shared by the readers (shared).
func benchConcurrentChan(b *testing.B, n int, shared bool) {
	chs := make([]chan payload, n)
	for i := range chs {
		if shared && i > 0 {
			chs[i] = chs[0]
			continue
		}
		chs[i] = make(chan payload, chanCapacity)
	}
	signals := n
	if shared {
		signals = 1
	}
	caughtUp := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, ch := range chs {
		wg.Go(func() {
			for v := range ch {
				if v[0]%burst == 0 { // the value pushed at step i has v[0] == byte(i)
					caughtUp <- struct{}{}
				}
			}
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	for i := 1; i <= b.N; i++ {
		if shared {
			chs[0] <- payloads[byte(i)]
		} else {
			for _, ch := range chs {
				ch <- payloads[byte(i)]
			}
		}
		if i%burst == 0 {
			for range signals {
				<-caughtUp
			}
		}
	}
	close(chs[0])
	if !shared {
		for _, ch := range chs[1:] {
			close(ch)
		}
	}
	wg.Wait()
	b.StopTimer()
	reportCPU(b, start)
	delivered := n
	if shared {
		delivered = 1
	}
	b.ReportMetric(float64(delivered), "delivered/op")
	b.ReportMetric(0, "lost/op")
}

// BenchmarkByteBudget measures what a byte budget costs a ring, in
// lockstep as BenchmarkPushRecv: budget=none is the ring without one (the
// same work as BenchmarkPushRecv's SpmcRing rows), budget=roomy has a
// budget it never reaches (the cost of the bookkeeping alone), and
// budget=evicting one of 64 values in a ring of 1024, so that every push
// evicts a value for its bytes.
func BenchmarkByteBudget(b *testing.B) {
	ctx := context.Background()
	size := func(payload) int64 { return int64(len(payload{})) }
	budgets := []struct {
		name string
		opts []Option[payload]
	}{
		{"none", nil},
		{"roomy", []Option[payload]{WithMaxBytes(1<<30, size)}},
		{"evicting", []Option[payload]{WithMaxBytes(64*int64(len(payload{})), size)}},
	}
	for _, n := range readerCounts {
		for _, bud := range budgets {
			b.Run(fmt.Sprintf("readers=%d/budget=%s", n, bud.name), func(b *testing.B) {
				ring, err := NewSpmcRing(1024, bud.opts...)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(ring.Close)
				rs := subscribeN(b, ring, n)
				b.ReportAllocs()
				defer reportCPU(b, cpuTime())
				for i := 0; b.Loop(); i++ {
					_ = ring.Push(payloads[byte(i)])
					for _, r := range rs {
						if it, err := r.Recv(ctx); err != nil || it.Value[0] != byte(i) {
							b.Fatalf("Recv: got (%v, %v)", it.Value[0], err)
						}
					}
				}
				if st := ring.Stats(); bud.name == "evicting" && b.N > 64 && st.Evicted == 0 {
					b.Fatalf("budget=evicting evicted nothing: %+v", st)
				}
			})
		}
	}
}

package buffer

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/recbuf/recbuf/internal/testutil/poll"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// hubOf returns the shared state of a buffer created by these tests.
func hubOf(t *testing.T, b Buffer[int]) *hub {
	t.Helper()
	switch x := b.(type) {
	case *SpmcRing[int]:
		return &x.hub
	case *SingleLatest[int]:
		return &x.hub
	case *Mailbox[int]:
		return &x.hub
	}
	t.Fatalf("unknown buffer %T", b)
	return nil
}

// coreOf returns the shared part of a reader created by these tests.
func coreOf(t *testing.T, r Reader[int]) *readerCore {
	t.Helper()
	switch x := r.(type) {
	case *ringReader[int]:
		return &x.core
	case *latestReader[int]:
		return &x.core
	case *mailboxReader[int]:
		return &x.core
	}
	t.Fatalf("unknown reader %T", r)
	return nil
}

// waitParked waits until n readers are parked in b's Recv.
func waitParked(t *testing.T, b Buffer[int], n int32) {
	t.Helper()
	h := hubOf(t, b)
	poll.Until(t, "readers are parked", func() bool { return h.waiters.n.Load() == n })
}

type recvResult struct {
	it  Item[int]
	err error
}

// recvAsync runs r.Recv(ctx) in a goroutine and returns where its result
// will arrive.
func recvAsync(ctx context.Context, r Reader[int]) <-chan recvResult {
	ch := make(chan recvResult, 1)
	go func() {
		it, err := r.Recv(ctx)
		ch <- recvResult{it, err}
	}()
	return ch
}

// await returns the result of a recvAsync, failing the test if none comes.
func await(t *testing.T, ch <-chan recvResult) recvResult {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(10 * time.Second):
		t.Fatal("Recv did not return")
		return recvResult{}
	}
}

func mustPush(t *testing.T, b Buffer[int], vs ...int) {
	t.Helper()
	for _, v := range vs {
		if err := b.Push(v); err != nil {
			t.Fatalf("Push(%d): got %v, want nil", v, err)
		}
	}
}

func mustSubscribe(t *testing.T, b Buffer[int], opts ...SubscribeOption) Reader[int] {
	t.Helper()
	r, err := b.Subscribe(opts...)
	if err != nil {
		t.Fatalf("Subscribe: got %v, want nil", err)
	}
	t.Cleanup(r.Close)
	return r
}

// wantItem receives without waiting and checks the result.
func wantItem(t *testing.T, r Reader[int], seq uint64, v int) {
	t.Helper()
	it, err := r.TryRecv()
	if err != nil {
		t.Fatalf("TryRecv: got error %v, want seq %d value %d", err, seq, v)
	}
	if it.Seq != seq || it.Value != v {
		t.Fatalf("TryRecv: got seq %d value %d, want seq %d value %d", it.Seq, it.Value, seq, v)
	}
}

// wantErr receives without waiting and checks the error.
func wantErr(t *testing.T, r Reader[int], want error) {
	t.Helper()
	it, err := r.TryRecv()
	if !errors.Is(err, want) {
		t.Fatalf("TryRecv: got (%+v, %v), want %v", it, err, want)
	}
}

// wantLag receives without waiting and checks for a lag of exactly missed.
func wantLag(t *testing.T, r Reader[int], missed uint64) {
	t.Helper()
	it, err := r.TryRecv()
	var lag *LaggedError
	if !errors.As(err, &lag) {
		t.Fatalf("TryRecv: got (%+v, %v), want a *LaggedError", it, err)
	}
	if lag.Missed != missed {
		t.Fatalf("LaggedError.Missed: got %d, want %d", lag.Missed, missed)
	}
	if !errors.Is(err, ErrLagged) {
		t.Fatalf("errors.Is(%v, ErrLagged): got false, want true", err)
	}
}

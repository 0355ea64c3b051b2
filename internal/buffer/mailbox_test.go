package buffer

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/recbuf/recbuf/internal/testutil/poll"
)

func newMailbox(t *testing.T) *Mailbox[int] {
	t.Helper()
	b := NewMailbox[int]()
	t.Cleanup(b.Close)
	return b
}

func TestMailbox(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"a receive takes the value and leaves the slot empty", func(t *testing.T) {
			b := newMailbox(t)
			r := mustSubscribe(t, b)
			mustPush(t, b, 1)
			if got := b.Stats().Occupancy; got != 1 {
				t.Fatalf("Occupancy with a value pending: got %d, want 1", got)
			}
			wantItem(t, r, 1, 1)
			wantErr(t, r, ErrEmpty)
			if it, ok := b.Peek(); ok {
				t.Fatalf("Peek after take: got %+v, want nothing", it)
			}
			if got := b.Stats().Occupancy; got != 0 {
				t.Fatalf("Occupancy after take: got %d, want 0", got)
			}
		}},
		{"a push replaces an unread value and counts the overwrite", func(t *testing.T) {
			b := newMailbox(t)
			r := mustSubscribe(t, b)
			mustPush(t, b, 1, 2, 3)
			wantItem(t, r, 3, 3)
			mustPush(t, b, 4)
			wantItem(t, r, 4, 4)
			if st := b.Stats(); st.Overwrites != 2 || st.Delivered != 2 || st.Produced != 4 {
				t.Fatalf("Stats: got %+v, want 2 overwrites, 2 delivered, 4 produced", st)
			}
		}},
		{"a push into an empty slot is not an overwrite", func(t *testing.T) {
			b := newMailbox(t)
			mustPush(t, b, 1)
			if got := b.Stats().Overwrites; got != 0 {
				t.Fatalf("Overwrites: got %d, want 0", got)
			}
		}},
		{"competing readers each get a value at most once", func(t *testing.T) {
			b := newMailbox(t)
			r1, r2 := mustSubscribe(t, b), mustSubscribe(t, b)
			mustPush(t, b, 1)
			wantItem(t, r2, 1, 1)
			wantErr(t, r1, ErrEmpty)
			mustPush(t, b, 2)
			wantItem(t, r1, 2, 2)
			wantErr(t, r2, ErrEmpty)
		}},
		{"parked competing readers each get a different value", func(t *testing.T) {
			b := newMailbox(t)
			const readers = 4
			results := make(chan recvResult, readers)
			var wg sync.WaitGroup
			for range readers {
				r := mustSubscribe(t, b)
				wg.Go(func() {
					it, err := r.Recv(context.Background())
					results <- recvResult{it, err}
				})
			}
			waitParked(t, b, readers)
			seen := map[int]bool{}
			for v := 1; v <= readers; v++ {
				mustPush(t, b, v)
				// Wait for the value to be taken so that no push overwrites.
				poll.Until(t, "the value is taken", func() bool { _, ok := b.Peek(); return !ok })
			}
			wg.Wait()
			close(results)
			for res := range results {
				if res.err != nil {
					t.Fatalf("Recv: got %v, want a value", res.err)
				}
				if seen[res.it.Value] {
					t.Fatalf("value %d delivered twice", res.it.Value)
				}
				seen[res.it.Value] = true
			}
			if len(seen) != readers {
				t.Fatalf("distinct values delivered: got %d, want %d", len(seen), readers)
			}
		}},
		{"a new reader takes a value that is still pending", func(t *testing.T) {
			b := newMailbox(t)
			mustPush(t, b, 7)
			r := mustSubscribe(t, b)
			wantItem(t, r, 1, 7)
		}},
		{"peek shows the pending value without taking it", func(t *testing.T) {
			b := newMailbox(t)
			mustPush(t, b, 7)
			if it, ok := b.Peek(); !ok || it.Value != 7 {
				t.Fatalf("Peek: got (%+v, %v), want value 7", it, ok)
			}
			r := mustSubscribe(t, b)
			wantItem(t, r, 1, 7)
		}},
		{"close still delivers the pending value to one reader, then closed", func(t *testing.T) {
			b := newMailbox(t)
			r1, r2 := mustSubscribe(t, b), mustSubscribe(t, b)
			mustPush(t, b, 3)
			b.Close()
			if err := b.Push(4); !errors.Is(err, ErrClosed) {
				t.Fatalf("Push after Close: got %v, want ErrClosed", err)
			}
			wantItem(t, r1, 1, 3)
			wantErr(t, r1, ErrClosed)
			wantErr(t, r2, ErrClosed)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

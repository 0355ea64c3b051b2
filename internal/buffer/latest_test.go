package buffer

import (
	"context"
	"testing"
)

func newLatest(t *testing.T) *SingleLatest[int] {
	t.Helper()
	b := NewSingleLatest[int]()
	t.Cleanup(b.Close)
	return b
}

func TestSingleLatest(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"push stores the value even with no subscribers", func(t *testing.T) {
			b := newLatest(t)
			mustPush(t, b, 1, 2)
			if it, ok := b.Peek(); !ok || it.Seq != 2 || it.Value != 2 {
				t.Fatalf("Peek: got (%+v, %v), want seq 2 value 2", it, ok)
			}
			if st := b.Stats(); st.Occupancy != 1 || st.Produced != 2 || st.Capacity != 1 {
				t.Fatalf("Stats: got %+v, want occupancy 1, produced 2, capacity 1", st)
			}
		}},
		{"a new reader receives the current value once", func(t *testing.T) {
			b := newLatest(t)
			mustPush(t, b, 1, 2, 3)
			r := mustSubscribe(t, b)
			wantItem(t, r, 3, 3)
			wantErr(t, r, ErrEmpty)
			if got := b.Stats().Skipped; got != 0 {
				t.Fatalf("Skipped: got %d, want 0 (values before subscribing are not skipped)", got)
			}
		}},
		{"a new reader waits when nothing was ever pushed", func(t *testing.T) {
			b := newLatest(t)
			r := mustSubscribe(t, b)
			wantErr(t, r, ErrEmpty)
			res := recvAsync(context.Background(), r)
			waitParked(t, b, 1)
			mustPush(t, b, 8)
			if got := await(t, res); got.err != nil || got.it.Seq != 1 || got.it.Value != 8 {
				t.Fatalf("Recv: got (%+v, %v), want seq 1 value 8", got.it, got.err)
			}
		}},
		{"a receive returns the latest value and skips the ones in between", func(t *testing.T) {
			b := newLatest(t)
			r := mustSubscribe(t, b)
			mustPush(t, b, 1)
			wantItem(t, r, 1, 1)
			mustPush(t, b, 2, 3, 4)
			wantItem(t, r, 4, 4)
			wantErr(t, r, ErrEmpty)
			if st := b.Stats(); st.Skipped != 2 || st.Delivered != 2 || st.LagEvents != 0 {
				t.Fatalf("Stats: got %+v, want 2 skipped, 2 delivered, no lag", st)
			}
		}},
		{"skipped values are summed over readers", func(t *testing.T) {
			b := newLatest(t)
			r1, r2 := mustSubscribe(t, b), mustSubscribe(t, b)
			mustPush(t, b, 1, 2, 3)
			wantItem(t, r1, 3, 3)
			wantItem(t, r2, 3, 3)
			if got := b.Stats().Skipped; got != 4 {
				t.Fatalf("Skipped: got %d, want 4", got)
			}
		}},
		{"every reader gets the latest value independently", func(t *testing.T) {
			b := newLatest(t)
			rs := []Reader[int]{mustSubscribe(t, b), mustSubscribe(t, b), mustSubscribe(t, b)}
			mustPush(t, b, 5)
			for _, r := range rs {
				wantItem(t, r, 1, 5)
			}
			mustPush(t, b, 6)
			wantItem(t, rs[1], 2, 6)
			wantItem(t, rs[0], 2, 6)
		}},
		{"a reader never lags however far behind it is", func(t *testing.T) {
			b := newLatest(t)
			r := mustSubscribe(t, b)
			for i := 1; i <= 10000; i++ {
				mustPush(t, b, i)
			}
			wantItem(t, r, 10000, 10000)
		}},
		{"close delivers the latest value to a reader that has not seen it, then closed", func(t *testing.T) {
			b := newLatest(t)
			seen, unseen := mustSubscribe(t, b), mustSubscribe(t, b)
			mustPush(t, b, 1)
			wantItem(t, seen, 1, 1)
			b.Close()
			wantErr(t, seen, ErrClosed)
			wantItem(t, unseen, 1, 1)
			wantErr(t, unseen, ErrClosed)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

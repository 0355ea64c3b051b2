package buffer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestDispatch(t *testing.T) {
	t.Run("handles every value in order and returns nil when the buffer closes", func(t *testing.T) {
		b := newRing(t, 8)
		r := mustSubscribe(t, b)
		pushRange(t, b, 1, 5)
		b.Close()
		var got []int
		err := Dispatch(context.Background(), r, HandlerFunc[int](func(_ context.Context, it Item[int]) error {
			got = append(got, it.Value)
			return nil
		}))
		if err != nil {
			t.Fatalf("Dispatch: got %v, want nil", err)
		}
		if want := []int{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
			t.Fatalf("handled: got %v, want %v", got, want)
		}
	})
	t.Run("reports a lag with its count, logs it and reads on", func(t *testing.T) {
		b := newRing(t, 2)
		r := mustSubscribe(t, b)
		pushRange(t, b, 1, 5)
		b.Close()
		var logs bytes.Buffer
		var missed []uint64
		var got []int
		err := Dispatch(context.Background(), r,
			HandlerFunc[int](func(_ context.Context, it Item[int]) error {
				got = append(got, it.Value)
				return nil
			}),
			WithLogger(slog.New(slog.NewTextHandler(&logs, nil))),
			OnLag(func(_ context.Context, n uint64) { missed = append(missed, n) }),
		)
		if err != nil {
			t.Fatalf("Dispatch: got %v, want nil", err)
		}
		if len(missed) != 1 || missed[0] != 3 {
			t.Fatalf("lags reported: got %v, want [3]", missed)
		}
		if want := []int{4, 5}; !slices.Equal(got, want) {
			t.Fatalf("handled: got %v, want %v", got, want)
		}
		if !strings.Contains(logs.String(), `msg="Reader lagged" missed=3`) {
			t.Fatalf("log: got %q, want a \"Reader lagged\" line with missed=3", logs.String())
		}
	})
	t.Run("returns nil when the reader is closed", func(t *testing.T) {
		b := newMailbox(t)
		r := mustSubscribe(t, b)
		done := make(chan error, 1)
		go func() {
			done <- Dispatch(context.Background(), r, HandlerFunc[int](func(context.Context, Item[int]) error { return nil }))
		}()
		waitParked(t, b, 1)
		r.Close()
		if err := <-done; err != nil {
			t.Fatalf("Dispatch: got %v, want nil", err)
		}
	})
	t.Run("stops on context cancellation even while values keep coming", func(t *testing.T) {
		b := newLatest(t)
		r := mustSubscribe(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		mustPush(t, b, 0)
		err := Dispatch(ctx, r, HandlerFunc[int](func(context.Context, Item[int]) error {
			n++
			if n == 3 {
				cancel()
			}
			_ = b.Push(n) // the buffer is never empty
			return nil
		}))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Dispatch: got %v, want context.Canceled", err)
		}
		if n != 3 {
			t.Fatalf("values handled: got %d, want 3", n)
		}
	})
	t.Run("stops on cancellation while waiting", func(t *testing.T) {
		b := newLatest(t)
		r := mustSubscribe(t, b)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- Dispatch(ctx, r, HandlerFunc[int](func(context.Context, Item[int]) error { return nil }))
		}()
		waitParked(t, b, 1)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Dispatch: got %v, want context.Canceled", err)
		}
	})
	t.Run("returns the handler's error, wrapped", func(t *testing.T) {
		b := newRing(t, 4)
		r := mustSubscribe(t, b)
		pushRange(t, b, 1, 3)
		errBoom := errors.New("boom")
		err := Dispatch(context.Background(), r, HandlerFunc[int](func(_ context.Context, it Item[int]) error {
			if it.Value == 2 {
				return errBoom
			}
			return nil
		}))
		if !errors.Is(err, errBoom) {
			t.Fatalf("Dispatch: got %v, want it to wrap %v", err, errBoom)
		}
		if !strings.Contains(err.Error(), "value 2") {
			t.Fatalf("Dispatch error: got %q, want it to name value 2", err)
		}
	})
}

package buffer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Handler handles the values a Dispatch loop receives.
type Handler[T any] interface {
	// Handle is called once per value, in order, from the goroutine that
	// runs Dispatch. An error stops the loop.
	Handle(ctx context.Context, it Item[T]) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc[T any] func(ctx context.Context, it Item[T]) error

// Handle calls f(ctx, it).
func (f HandlerFunc[T]) Handle(ctx context.Context, it Item[T]) error { return f(ctx, it) }

// DispatchOption configures Dispatch.
type DispatchOption func(*dispatchConfig)

type dispatchConfig struct {
	log   *slog.Logger
	onLag func(ctx context.Context, missed uint64)
}

// WithLogger sets the logger Dispatch reports lag to (default:
// slog.Default()).
func WithLogger(l *slog.Logger) DispatchOption {
	return func(c *dispatchConfig) { c.log = l }
}

// OnLag sets a function Dispatch calls, after logging, each time the reader
// lagged, with the number of values it missed. The buffer counts lag in its
// Stats already; this is for counters of the caller's own.
func OnLag(f func(ctx context.Context, missed uint64)) DispatchOption {
	return func(c *dispatchConfig) { c.onLag = f }
}

// Dispatch receives from r and calls h for each value until the buffer or
// the reader is closed (it returns nil), ctx is done (it returns ctx.Err()),
// or h fails (it returns h's error, wrapped). Lag is not fatal: Dispatch
// logs "Reader lagged" with the number of values missed, calls the OnLag
// function if any, and reads on from the oldest retained value.
//
// Dispatch does not close r; the caller owns it.
func Dispatch[T any](ctx context.Context, r Reader[T], h Handler[T], opts ...DispatchOption) error {
	cfg := dispatchConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.log == nil {
		cfg.log = slog.Default()
	}
	for {
		// Recv prefers an available value to a done ctx; a busy buffer must
		// not keep Dispatch from noticing cancellation.
		if err := ctx.Err(); err != nil {
			return err
		}
		it, err := r.Recv(ctx)
		var lag *LaggedError
		switch {
		case err == nil:
			if err := h.Handle(ctx, it); err != nil {
				return fmt.Errorf("handle value %d: %w", it.Seq, err)
			}
		case errors.As(err, &lag):
			cfg.log.WarnContext(ctx, "Reader lagged", "missed", lag.Missed)
			if cfg.onLag != nil {
				cfg.onLag(ctx, lag.Missed)
			}
		case errors.Is(err, ErrClosed):
			return nil
		default:
			return err
		}
	}
}

package sidecar

import (
	"github.com/nats-io/nats.go"

	"github.com/recbuf/recbuf/internal/buffer"
)

// Subscription returns the NATS subscription of the named record's
// intake (nil for no such record), so that a test can shrink its pending
// limits and provoke a slow consumer.
func (s *Sidecar) Subscription(record string) *nats.Subscription {
	for _, r := range s.records {
		if r.cfg.Name == record {
			return r.intake.Subscription()
		}
	}
	return nil
}

// BufferStats returns the named record's buffer counters (zero for no
// such record), for benchmarks that wait for their last value.
func (s *Sidecar) BufferStats(record string) buffer.Stats {
	for _, r := range s.records {
		if r.cfg.Name == record {
			return r.buf.Stats()
		}
	}
	return buffer.Stats{}
}

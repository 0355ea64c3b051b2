package sidecar

import "github.com/nats-io/nats.go"

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

package sidecar

import (
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
)

// reconnectDelay backs off exponentially from lo to hi, with up to 25%
// jitter so that many buffer processes do not reconnect in lockstep after
// a NATS restart.
func reconnectDelay(lo, hi time.Duration) nats.ReconnectDelayHandler {
	return func(attempts int) time.Duration {
		d := lo
		for i := 1; i < attempts && d < hi; i++ {
			d *= 2
		}
		d = min(d, hi)
		return d + time.Duration(rand.Int64N(int64(d)/4+1))
	}
}

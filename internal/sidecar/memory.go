package sidecar

import (
	"runtime/debug"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/sizing"
	"github.com/recbuf/recbuf/internal/wire"
)

// newBuffer makes rc's buffer, with its byte budget when it has one. The
// budget counts payload bytes, as MaxMessageBytes does; what a message
// holds besides (its header in the ring's slot, its subject) is fixed per
// slot and sized by the manager with the capacity (package sizing).
func newBuffer(rc RecordConfig, opts ...buffer.Option[wire.Message]) (buffer.Buffer[wire.Message], error) {
	if rc.MaxBytes > 0 {
		opts = append(opts, buffer.WithMaxBytes(rc.MaxBytes, payloadBytes))
	}
	return buffer.New(rc.Type, rc.Capacity, opts...)
}

func payloadBytes(m wire.Message) int64 { return int64(len(m.Data)) }

// SetGoMemoryLimit sets the Go runtime's soft memory limit to
// sizing.GoLimitPercent (90 %) of the container's memory limit
// (Config.MemoryLimit), so that the garbage collector works harder as the
// heap nears the limit instead of letting it grow to twice the live data
// and the container be killed. Not the whole limit, since the kernel
// charges the container for memory the Go limit does not count (the
// binary, thread stacks, socket buffers); and not GOMEMLIMIT straight from
// the downward API, which can only copy the limit, not take a share of it.
//
// A GOMEMLIMIT in the environment wins: the runtime has applied it, and
// the Go limit is left alone, as it is without a memory limit. It returns
// the Go limit in force and whether it set it. The limit is the
// process's, so cmd/sidecar calls this once, not Start.
func SetGoMemoryLimit(cfg Config, getenv func(string) string) (limit int64, set bool) {
	if getenv("GOMEMLIMIT") != "" || cfg.MemoryLimit <= 0 {
		return debug.SetMemoryLimit(-1), false
	}
	limit = sizing.GoMemoryLimit(cfg.MemoryLimit)
	debug.SetMemoryLimit(limit)
	return limit, true
}

// Package sizing is the one formula by which a buffer process gets its
// memory: from what a Record declares (capacity, maxMessageBytes, the ring's
// byte budget maxBytes, a memory limit of its own) and the manager's
// ceiling, the worst case the process holds and the memory limit it runs
// with (Size); and the parts the buffer process applies itself: the bounds
// of its intake queue (PendingLimits) and the Go runtime's soft limit
// (GoMemoryLimit). The manager and the buffer process both use it, so that
// what the manager reserves is what the process holds to.
//
// docs/operations.md ("Memory") explains the formula to operators; change
// the two together.
//
// The package holds no state: its functions are pure and safe for
// concurrent use.
package sizing

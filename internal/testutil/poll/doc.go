// Package poll waits in tests for a condition that another goroutine or
// process makes true, by polling it against a deadline: the one allowed
// alternative to a sleep used as synchronisation where gomega's Eventually
// is not at hand (library tests, benchmarks).
//
// Its functions are safe for concurrent use; like every testing.TB helper
// that fails a test, they must be called from the test's own goroutine.
package poll

// Package client is the Go client of recbuf's consumer API: it reads one
// record from a buffer process over HTTP.
//
// Create a Client with the record's URL — the Record's status.endpoint,
// e.g. http://telemetry-recbuf.default.svc:8080/v1/records/telemetry, or
// http://127.0.0.1:8080/v1/records/telemetry against a standalone sidecar —
// then:
//
//   - Stream delivers every value to a Handler as it arrives, reconnecting
//     on its own and resuming after the last value it delivered. On a
//     SpmcRing record a resume loses nothing while the buffer still holds
//     the next value; otherwise, and whenever this consumer falls behind,
//     the lag callback is told exactly how many values were missed. A
//     resume at a process that did not number that value (it restarted,
//     or is another replica) is told to the reset callback: sequence
//     numbers are per process, and a Value names the instance that
//     numbered it.
//   - Latest returns the current value.
//   - Take takes a Mailbox record's pending value, waiting for one.
//
// What a stream delivers follows the record's buffer type: a ring streams
// every value in order (or a lag count), SingleLatest the current value and
// then newer ones (intermediate values may be skipped), Mailbox values this
// consumer takes away from any other consumer of the record.
//
// A Client is safe for concurrent use, and its zero value is not usable.
// Stream calls its handler and callbacks from the calling goroutine, one
// at a time, in stream order; a handler that blocks holds the stream back,
// and the buffer process then reports the lag, never the producer.
package client

// Package natstest runs a real, in-process NATS server for tests: on a
// random port, optionally restarted on the same port to exercise client
// reconnection.
//
// A Server is safe for concurrent use. Its methods fail the test through
// testing.TB instead of returning errors, and Start registers a cleanup
// that shuts the server down when the test ends.
package natstest

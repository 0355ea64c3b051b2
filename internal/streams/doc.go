// Package streams holds the names and limits shared by the manager and the
// buffer process for a Record kept in NATS JetStream (spec.persistence):
// the stream's deterministic name, and the metadata keys by which the
// manager recognises a stream as its own.
//
// The manager creates, updates and deletes the stream (controllers,
// record_stream.go); the buffer process restores from it and follows it
// (cmd/sidecar --jetstream-stream). Both derive the name with Name, so they
// agree without a lookup.
//
// Concurrency: the package holds no state; its functions are safe for
// concurrent use.
package streams

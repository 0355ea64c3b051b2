// Package streams holds the manager's names and limits for the stream of a
// Record kept in NATS JetStream (spec.persistence): the stream's
// deterministic name, the metadata keys by which the manager recognises a
// stream as its own, and the message limit of a single-value stream.
//
// The manager creates, updates and deletes the stream (controllers,
// record_stream.go). Only the manager derives the name, with Name (through
// bufferpod.StreamName, which also takes an adopted stream): it
// passes it to the buffer process (cmd/sidecar --jetstream-stream), which
// restores from the stream and follows it without knowing how the name
// was made, and so reads an adopted stream (spec.persistence.stream) the
// same way.
//
// Concurrency: the package holds no state; its functions are safe for
// concurrent use.
package streams

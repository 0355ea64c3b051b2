// Package wire is the vocabulary shared by the buffer process and its
// clients: the Message a buffer holds, the NATS headers edge devices may
// set, the defaults a Record and a buffer process must agree on (the
// default subject, the message size limit), the HTTP headers and the
// Server-Sent Events encoding of the consumer API (see
// docs/consumer-api.md for the contract as users read it).
//
// Encoding is append-style (AppendValueEvent and friends write into a
// caller-owned slice) so that a stream reuses one buffer and allocates
// nothing per value; WriteValueEvent and WriteEnvelope write a large value
// in pieces instead, so that no buffer grows to its size. EventReader
// parses a stream back into events.
//
// Functions are safe for concurrent use. A Message is a value: it is never
// modified after it is pushed into a buffer, so readers may share its Data.
// An EventReader is for one goroutine.
package wire

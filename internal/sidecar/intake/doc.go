// Package intake takes a record's messages in from NATS and pushes them
// into the record's buffer.
//
// One Intake serves one subscription. nats.go calls its message handler
// from the subscription's own goroutine, one message at a time, and the
// handler never waits: buffer Push does not block, so a slow consumer can
// never slow intake down. A message the buffer cannot take (larger than
// the size limit, or with a malformed device header) is counted as dropped
// and logged at a bounded rate; nothing in a message can crash the process.
//
// A device names itself in the Recbuf-Device and Recbuf-Device-Seq headers;
// a message from NATS's MQTT listener, which has no headers to carry them,
// in the "device" and "seq" fields of its JSON payload instead.
//
// Stats is safe to call from any goroutine at any time. Start and Drain are
// called once each, from the goroutine that owns the Intake.
package intake

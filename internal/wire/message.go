package wire

import (
	"time"
	"unicode/utf8"
)

// Header names that edge devices may set on the NATS messages they publish.
// nats.go looks headers up case-sensitively, so they must be spelled
// exactly like this.
const (
	// HeaderDevice names the publishing device (any string, at most
	// MaxDeviceLen bytes).
	HeaderDevice = "Recbuf-Device"
	// HeaderDeviceSeq is the device's own sequence number for this stream:
	// a decimal integer in 1..2^64-1 that grows by one per message. Gaps let
	// the buffer process count values lost upstream of it.
	HeaderDeviceSeq = "Recbuf-Device-Seq"
)

// HeaderMQTT is the header nats-server sets on every message that an MQTT
// client published through its MQTT listener (its value is the MQTT QoS).
// MQTT 3.1.1 has no headers of its own, so for such a message the buffer
// process reads the device and its sequence from the JSON payload instead
// (FieldDevice, FieldDeviceSeq).
const HeaderMQTT = "Nmqtt-Pub"

// The top-level fields of a JSON object payload that carry the device and
// its sequence for messages that came through MQTT (HeaderMQTT), with the
// meaning of HeaderDevice and HeaderDeviceSeq.
const (
	FieldDevice    = "device"
	FieldDeviceSeq = "seq"
)

// MaxDeviceLen is the longest device name accepted in HeaderDevice.
const MaxDeviceLen = 256

// HTTP headers of the consumer API.
const (
	// HeaderInstance carries the buffer process instance that numbered the
	// values: the server sets it on every response, and a client sends it
	// back when it resumes, so that sequence numbers from a restarted or
	// different process are never mistaken for a position.
	HeaderInstance = "Recbuf-Instance"
	// HeaderSeq carries the sequence number of a value returned by latest
	// and take.
	HeaderSeq = "Recbuf-Seq"
	// HeaderTime carries, in the raw format of latest and take, when the
	// buffer process took the value in (RFC 3339 with nanoseconds, UTC): the
	// envelope's "time", which a raw body has no room for.
	HeaderTime = "Recbuf-Time"
	// HeaderType carries the record's buffer type.
	HeaderType = "Recbuf-Buffer-Type"
)

// Message is one value held by a buffer: the payload of one NATS message
// and what the buffer process learnt when it took it in.
type Message struct {
	// Data is the payload, opaque bytes, never modified once pushed.
	Data []byte
	// Received is when the buffer process took the message in.
	Received time.Time
	// Subject is the NATS subject the message was published on.
	Subject string
	// Device is HeaderDevice's value, empty when absent.
	Device string
	// DeviceSeq is HeaderDeviceSeq's value, 0 when absent.
	DeviceSeq uint64
	// JSON is true when Data is one valid UTF-8 JSON value, which the
	// consumer API then embeds as is instead of base64.
	JSON bool
}

// IsJSON reports whether data can be embedded in an envelope as JSON: one
// valid JSON value in valid UTF-8.
func IsJSON(data []byte) bool {
	return len(data) > 0 && utf8.Valid(data) && validJSON(data)
}

// Package edgesim simulates edge devices publishing to NATS: telemetry
// readings (for a SpmcRing record), device state (SingleLatest) and
// commands (Mailbox), each message with the Recbuf-Device and
// Recbuf-Device-Seq headers that docs/edge.md asks gateways to set.
// Over MQTT (an MQTTPublisher, through NATS's MQTT listener) the same
// payloads go without headers: their own "device" and "seq" fields name
// the device, as docs/edge.md asks of MQTT devices.
//
// Run publishes each enabled stream from its own goroutine and returns
// when all are done or the context ends. It is safe to run several
// simulators concurrently on one connection or Publisher.
package edgesim

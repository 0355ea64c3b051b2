package edgesim

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"

	"github.com/recbuf/recbuf/internal/wire"
)

// Publisher sends the simulated devices' messages. Publish is called from
// one goroutine per stream at once; Flush once, after the last Publish.
type Publisher interface {
	// Publish sends data, message number seq of device, on a NATS subject.
	Publish(ctx context.Context, subject, device string, seq uint64, data []byte) error
	// Flush returns once the server has everything published so far.
	Flush(ctx context.Context) error
}

// NATSPublisher publishes on a NATS connection, with the device in the
// Recbuf-Device and Recbuf-Device-Seq headers.
type NATSPublisher struct {
	Conn *nats.Conn
}

// Publish implements Publisher. It does not wait for the server.
func (p NATSPublisher) Publish(_ context.Context, subject, device string, seq uint64, data []byte) error {
	return p.Conn.PublishMsg(&nats.Msg{
		Subject: subject,
		Data:    data,
		Header: nats.Header{
			wire.HeaderDevice:    []string{device},
			wire.HeaderDeviceSeq: []string{strconv.FormatUint(seq, 10)},
		},
	})
}

// Flush implements Publisher.
func (p NATSPublisher) Flush(ctx context.Context) error { return p.Conn.FlushWithContext(ctx) }

// MQTTPublisher publishes as an MQTT client through NATS's MQTT listener,
// as an MCU gateway would: on the topic whose NATS subject is the one
// asked for (MQTTTopic), with QoS 0, 1 or 2. MQTT 3.1.1 has no headers: the
// payloads' own "device" and "seq" fields name the device, which the
// buffer process reads for MQTT messages (docs/edge.md).
type MQTTPublisher struct {
	Client mqtt.Client
	QoS    byte
}

// Publish implements Publisher. It returns once the message is written
// (QoS 0) or acknowledged (QoS 1, 2), or ctx ends.
func (p MQTTPublisher) Publish(ctx context.Context, subject, _ string, _ uint64, data []byte) error {
	tok := p.Client.Publish(MQTTTopic(subject), p.QoS, false, data)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("MQTT publish: %w", err)
	}
	return nil
}

// Flush implements Publisher: every Publish has already waited.
func (MQTTPublisher) Flush(context.Context) error { return nil }

// MQTTTopic is the MQTT topic that NATS's MQTT listener maps to subject:
// its '.'-separated tokens become '/'-separated levels.
func MQTTTopic(subject string) string { return strings.ReplaceAll(subject, ".", "/") }

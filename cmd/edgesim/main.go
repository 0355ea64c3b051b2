// Command edgesim simulates edge devices publishing telemetry, state and
// commands to NATS, with the device headers of docs/edge.md. For demos,
// end-to-end tests and benchmarks:
//
//	edgesim --nats-url nats://127.0.0.1:4222 --devices 3 --rate 10 --count 100
//
// Its default subjects are those of the sample Records (devices.telemetry,
// devices.state, devices.commands). Simulators publishing at once need
// different --device-prefix values, or their devices' sequences interleave.
//
// With --protocol mqtt it publishes as an MQTT 3.1.1 client through NATS's
// MQTT listener instead (topic devices/telemetry for subject
// devices.telemetry), the device named in each payload's own fields:
//
//	edgesim --protocol mqtt --mqtt-url tcp://127.0.0.1:1883 --count 100
//
// A stream whose subject is set to "" is not published. On exit it prints
// how many messages each stream published, as JSON.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"

	"github.com/recbuf/recbuf/internal/edgesim"
)

func main() { os.Exit(runWithSignals()) }

// runWithSignals runs edgesim until SIGTERM or SIGINT. It is apart from main
// so that its deferred calls run before os.Exit.
func runWithSignals() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("edgesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg edgesim.Config
	protocol := fs.String("protocol", "nats", "how to publish: nats, or mqtt (MQTT 3.1.1 through NATS's MQTT listener)")
	url := fs.String("nats-url", "nats://127.0.0.1:4222", "NATS server URL (--protocol nats)")
	mqttURL := fs.String("mqtt-url", "tcp://127.0.0.1:1883", "MQTT server URL (--protocol mqtt)")
	qos := fs.Uint("mqtt-qos", 1, "MQTT QoS of each publish: 0, 1 or 2 (--protocol mqtt)")
	mqttClientID := fs.String("mqtt-client-id", "", "MQTT client id (default recbuf-edgesim-<device prefix>; --protocol mqtt)")
	fs.StringVar(&cfg.TelemetrySubject, "telemetry-subject", "devices.telemetry", "subject of telemetry readings (\"\": none); may contain {device}")
	fs.StringVar(&cfg.StateSubject, "state-subject", "devices.state", "subject of device state (\"\": none); may contain {device}")
	fs.StringVar(&cfg.CommandSubject, "command-subject", "devices.commands", "subject of commands (\"\": none); may contain {device}")
	fs.IntVar(&cfg.Devices, "devices", 3, "number of simulated devices")
	fs.StringVar(&cfg.DevicePrefix, "device-prefix", edgesim.DefaultDevicePrefix,
		"device names are PREFIX-001, PREFIX-002, ...; give simulators publishing at once different prefixes")
	fs.Float64Var(&cfg.Rate, "rate", 10, "messages per second per stream (0: as fast as possible)")
	fs.Uint64Var(&cfg.Count, "count", 0, "messages per stream (0: until interrupted)")
	fs.IntVar(&cfg.Pad, "pad", 0, "extra bytes in each telemetry reading")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed of the readings")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var (
		pub      edgesim.Publisher
		closePub func()
		err      error
	)
	switch *protocol {
	case "nats":
		pub, closePub, err = connectNATS(*url)
	case "mqtt":
		if *qos > 2 {
			_, _ = fmt.Fprintf(stderr, "edgesim: --mqtt-qos %d: want 0, 1 or 2\n", *qos)
			return 2
		}
		clientID := *mqttClientID
		if clientID == "" {
			clientID = "recbuf-edgesim-" + cfg.DevicePrefix
		}
		pub, closePub, err = connectMQTT(*mqttURL, clientID, byte(*qos))
	default:
		_, _ = fmt.Fprintf(stderr, "edgesim: --protocol %q: want nats or mqtt\n", *protocol)
		return 2
	}
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "edgesim:", err)
		return 1
	}
	defer closePub()
	res, err := edgesim.RunOn(ctx, pub, cfg)
	if errors.Is(err, edgesim.ErrInvalidDevicePrefix) {
		_, _ = fmt.Fprintln(stderr, "edgesim:", err)
		return 2
	}
	out, _ := json.Marshal(res)
	_, _ = fmt.Fprintln(stdout, string(out))
	if err != nil && !errors.Is(err, context.Canceled) {
		_, _ = fmt.Fprintln(stderr, "edgesim:", err)
		return 1
	}
	return 0
}

// connectNATS connects to NATS, retrying until it answers.
func connectNATS(url string) (edgesim.Publisher, func(), error) {
	nc, err := nats.Connect(url, nats.Name("recbuf-edgesim"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, nil, err
	}
	return edgesim.NATSPublisher{Conn: nc}, nc.Close, nil
}

// mqttConnectTimeout bounds the first MQTT connection.
const mqttConnectTimeout = 30 * time.Second

// connectMQTT connects an MQTT 3.1.1 client with a clean session, which
// reconnects on its own after a connection loss.
func connectMQTT(url, clientID string, qos byte) (edgesim.Publisher, func(), error) {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(true).
		SetConnectRetry(true).SetConnectTimeout(10 * time.Second))
	tok := c.Connect()
	if !tok.WaitTimeout(mqttConnectTimeout) {
		c.Disconnect(0)
		return nil, nil, fmt.Errorf("MQTT connect to %s: not connected within %s", url, mqttConnectTimeout)
	}
	if err := tok.Error(); err != nil {
		return nil, nil, fmt.Errorf("MQTT connect to %s: %w", url, err)
	}
	return edgesim.MQTTPublisher{Client: c, QoS: qos}, func() { c.Disconnect(250) }, nil
}

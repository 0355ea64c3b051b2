package main

import (
	"bytes"
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunPrintsWhatItPublished(t *testing.T) {
	srv := natstest.Start(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--nats-url", srv.URL(), "--count", "5", "--rate", "0", "--state-subject", ""}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code %d, stderr %s", code, stderr.String())
	}
	if got, want := strings.TrimSpace(stdout.String()), `{"command":5,"telemetry":5}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestRunRefusesUnknownFlags(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--nope"}, &out, &out); code != 2 {
		t.Errorf("got exit code %d, want 2", code)
	}
}

func TestRunPublishesToTheSampleRecordsSubjectsByDefault(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect()
	sub, err := nc.SubscribeSync("devices.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--nats-url", srv.URL(), "--count", "1", "--devices", "1", "--rate", "0"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d, stderr %s", code, stderr.String())
	}
	got := map[string]string{}
	for range 3 {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got[m.Subject] = m.Header.Get(wire.HeaderDevice)
	}
	// The subjects of config/samples' Records.
	want := map[string]string{"devices.telemetry": "dev-001", "devices.state": "dev-001", "devices.commands": "dev-001"}
	if !maps.Equal(got, want) {
		t.Errorf("got subjects and devices %v, want %v", got, want)
	}
}

func TestRunNamesDevicesWithThePrefixGiven(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect()
	sub, err := nc.SubscribeSync("devices.*.telemetry")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"--nats-url", srv.URL(), "--count", "2", "--devices", "2", "--rate", "0", "--device-prefix", "gw",
		"--telemetry-subject", "devices.{device}.telemetry", "--state-subject", "", "--command-subject", ""}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d, stderr %s", code, stderr.String())
	}
	for _, want := range []string{"gw-001", "gw-002"} {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if dev := m.Header.Get(wire.HeaderDevice); dev != want || m.Subject != "devices."+want+".telemetry" {
			t.Errorf("got device %s on %s, want %s on devices.%s.telemetry", dev, m.Subject, want, want)
		}
	}
}

func TestRunRefusesADevicePrefixWithADot(t *testing.T) {
	srv := natstest.Start(t)
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--nats-url", srv.URL(), "--device-prefix", "a.b"}, &out, &out); code != 2 {
		t.Errorf("got exit code %d, want 2 (output %s)", code, out.String())
	}
}

func TestRunPublishesOverMQTTToTheSameSubjects(t *testing.T) {
	srv := natstest.Start(t, natstest.WithMQTT(t))
	nc := srv.Connect()
	sub, err := nc.SubscribeSync("devices.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"--protocol", "mqtt", "--mqtt-url", "tcp://" + srv.MQTTAddr(), "--count", "2", "--devices", "1", "--rate", "0", "--command-subject", ""}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d, stderr %s", code, stderr.String())
	}
	if got, want := strings.TrimSpace(stdout.String()), `{"state":2,"telemetry":2}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	got := map[string]int{}
	for range 4 {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		if m.Header.Get(wire.HeaderMQTT) != "1" {
			t.Errorf("got headers %v, want the MQTT listener's QoS 1 mark", m.Header)
		}
		got[m.Subject]++
	}
	if want := map[string]int{"devices.telemetry": 2, "devices.state": 2}; !maps.Equal(got, want) {
		t.Errorf("got subjects %v, want %v", got, want)
	}
}

func TestRunRefusesAnUnknownProtocolAndQoS(t *testing.T) {
	for _, args := range [][]string{{"--protocol", "amqp"}, {"--protocol", "mqtt", "--mqtt-qos", "3"}} {
		var out bytes.Buffer
		if code := run(context.Background(), args, &out, &out); code != 2 {
			t.Errorf("%v: got exit code %d, want 2 (%s)", args, code, out.String())
		}
	}
}

package edgesim_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strconv"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/recbuf/recbuf/internal/edgesim"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunPublishesWhatItSays(t *testing.T) {
	srv := natstest.Start(t)
	sub := srv.Connect()
	msgs := make(chan *nats.Msg, 1000)
	if _, err := sub.ChanSubscribe("sim.>", msgs); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	const devices, count = 3, 7
	res, err := edgesim.Run(context.Background(), srv.Connect(), edgesim.Config{
		TelemetrySubject: "sim.{device}.telemetry", StateSubject: "sim.state", CommandSubject: "sim.cmd",
		Devices: devices, Count: count, Pad: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := edgesim.Result{edgesim.StreamTelemetry: count, edgesim.StreamState: count, edgesim.StreamCommand: count}
	for k, v := range want {
		if res[k] != v {
			t.Errorf("got result %v, want %v", res, want)
		}
	}

	// Per subject family and device, the device sequence runs 1, 2, 3...
	// and matches the payload's own seq field.
	nextSeq := map[string]uint64{}
	for range 3 * count {
		var m *nats.Msg
		select {
		case m = <-msgs:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d messages arrived", len(nextSeq))
		}
		dev := m.Header.Get(wire.HeaderDevice)
		seq, err := strconv.ParseUint(m.Header.Get(wire.HeaderDeviceSeq), 10, 64)
		if err != nil {
			t.Fatalf("message without a device sequence: %v", m.Header)
		}
		family := m.Subject
		if m.Subject == "sim."+dev+".telemetry" {
			family = "telemetry"
		}
		var body struct {
			Device string `json:"device"`
			Seq    uint64 `json:"seq"`
			Pad    string `json:"pad"`
		}
		if err := json.Unmarshal(m.Data, &body); err != nil {
			t.Fatalf("payload %q is not JSON: %v", m.Data, err)
		}
		key := family + "/" + dev
		nextSeq[key]++
		if seq != nextSeq[key] || body.Seq != seq || body.Device != dev {
			t.Errorf("%s on %s: got header seq %d, payload %+v, want seq %d", dev, m.Subject, seq, body, nextSeq[key])
		}
		if family == "telemetry" && len(body.Pad) != 10 {
			t.Errorf("got a pad of %d bytes, want 10", len(body.Pad))
		}
	}
	if got := len(nextSeq); got != 3*devices {
		t.Errorf("got %d stream/device pairs, want %d", got, 3*devices)
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	srv := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	nc := srv.Connect()
	sub, err := nc.SubscribeSync("only.telemetry")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		// Stop once publishing has visibly begun.
		if _, err := sub.NextMsg(10 * time.Second); err == nil {
			cancel()
		}
	}()
	res, err := edgesim.Run(ctx, srv.Connect(), edgesim.Config{TelemetrySubject: "only.telemetry", Rate: 1000})
	cancel()
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if res[edgesim.StreamTelemetry] == 0 || len(res) != 1 {
		t.Errorf("got %v, want some telemetry and nothing else", res)
	}
}

func TestRunWithDistinctDevicePrefixesKeepsTwoPublishersApart(t *testing.T) {
	srv := natstest.Start(t)
	nc := srv.Connect()
	sub, err := nc.SubscribeSync("shared.telemetry")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	const devices, count = 2, 10
	errs := make(chan error, 2)
	for _, prefix := range []string{"", "gw"} {
		pub := srv.Connect()
		go func() {
			_, err := edgesim.Run(context.Background(), pub, edgesim.Config{
				TelemetrySubject: "shared.telemetry", Devices: devices, DevicePrefix: prefix, Count: count, Rate: 0,
			})
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Each device's sequence runs 1, 2, 3... although both publishers
	// interleave on one subject.
	nextSeq := map[string]uint64{}
	for range 2 * count {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("after %v: %v", nextSeq, err)
		}
		dev := m.Header.Get(wire.HeaderDevice)
		nextSeq[dev]++
		if got := m.Header.Get(wire.HeaderDeviceSeq); got != strconv.FormatUint(nextSeq[dev], 10) {
			t.Errorf("%s: got device seq %s, want %d", dev, got, nextSeq[dev])
		}
	}
	want := map[string]uint64{"dev-001": count / devices, "dev-002": count / devices, "gw-001": count / devices, "gw-002": count / devices}
	if !maps.Equal(nextSeq, want) {
		t.Errorf("got messages per device %v, want %v", nextSeq, want)
	}
}

func TestRunRefusesADevicePrefixThatIsNoSubjectTokenOrTopicLevel(t *testing.T) {
	srv := natstest.Start(t)
	for _, prefix := range []string{"a.b", "a*", ">", "a b", "a/b", "a+", "#"} {
		_, err := edgesim.Run(context.Background(), srv.Connect(), edgesim.Config{TelemetrySubject: "x.{device}", DevicePrefix: prefix, Count: 1})
		if !errors.Is(err, edgesim.ErrInvalidDevicePrefix) {
			t.Errorf("prefix %q: got %v, want ErrInvalidDevicePrefix", prefix, err)
		}
	}
}

func TestRunOverMQTTPublishesTheSameStreamsThroughNATSsMQTTListener(t *testing.T) {
	srv := natstest.Start(t, natstest.WithMQTT(t))
	sub := srv.Connect()
	msgs := make(chan *nats.Msg, 1000)
	if _, err := sub.ChanSubscribe("sim.>", msgs); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + srv.MQTTAddr()).SetClientID("edgesim-test").SetProtocolVersion(4))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("MQTT connect: %v", tok.Error())
	}
	defer c.Disconnect(250)
	const devices, count = 2, 6
	res, err := edgesim.RunOn(context.Background(), edgesim.MQTTPublisher{Client: c, QoS: 1}, edgesim.Config{
		TelemetrySubject: "sim.{device}.telemetry", StateSubject: "sim.state", Devices: devices, Count: count,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[edgesim.StreamTelemetry] != count || res[edgesim.StreamState] != count {
		t.Errorf("got result %v, want %d per stream", res, count)
	}
	nextSeq := map[string]uint64{}
	for range 2 * count {
		var m *nats.Msg
		select {
		case m = <-msgs:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %v arrived", nextSeq)
		}
		if m.Header.Get(wire.HeaderMQTT) != "1" || m.Header.Get(wire.HeaderDevice) != "" {
			t.Errorf("got headers %v, want only MQTT's QoS 1 mark, no device headers", m.Header)
		}
		var body struct {
			Device string `json:"device"`
			Seq    uint64 `json:"seq"`
		}
		if err := json.Unmarshal(m.Data, &body); err != nil {
			t.Fatalf("payload %q is not JSON: %v", m.Data, err)
		}
		family := m.Subject
		if m.Subject == "sim."+body.Device+".telemetry" {
			family = "telemetry"
		}
		key := family + "/" + body.Device
		nextSeq[key]++
		if body.Seq != nextSeq[key] {
			t.Errorf("%s on %s: got seq %d, want %d", body.Device, m.Subject, body.Seq, nextSeq[key])
		}
	}
	if len(nextSeq) != 2*devices {
		t.Errorf("got stream/device pairs %v, want %d", nextSeq, 2*devices)
	}
}

func TestMQTTTopicIsTheSubjectsLevels(t *testing.T) {
	for subject, want := range map[string]string{
		"devices.telemetry":         "devices/telemetry",
		"devices.dev-001.telemetry": "devices/dev-001/telemetry",
		"single":                    "single",
	} {
		if got := edgesim.MQTTTopic(subject); got != want {
			t.Errorf("MQTTTopic(%q): got %q, want %q", subject, got, want)
		}
	}
}

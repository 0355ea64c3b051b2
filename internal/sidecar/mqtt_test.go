package sidecar_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/onsi/gomega"

	"github.com/recbuf/recbuf/internal/sidecar"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
	"github.com/recbuf/recbuf/internal/wire"
	"github.com/recbuf/recbuf/pkg/client"
)

// standaloneMQTT starts a standalone buffer process whose embedded NATS
// server also listens for MQTT, with its JetStream store under a directory
// of the test's, which it returns.
func standaloneMQTT(t *testing.T, maxMessageBytes int, specs ...string) (*running, string) {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the JetStream store goes, to see it removed
	args := []string{"--embedded-nats", "127.0.0.1:0", "--embedded-mqtt", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--log-level", "error",
		"--max-message-bytes", strconv.Itoa(maxMessageBytes)}
	for _, s := range specs {
		args = append(args, "--record", s)
	}
	cfg, err := sidecar.ParseFlags(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	sc := start(t, cfg)
	if sc.MQTTAddr() == "" || strings.HasSuffix(sc.MQTTAddr(), ":0") {
		t.Fatalf("got MQTT address %q, want a bound host:port", sc.MQTTAddr())
	}
	return sc, tmp
}

// pahoClient connects a Paho MQTT 3.1.1 client, which reports a lost
// connection on the returned channel, and disconnects it when the test ends.
func pahoClient(t *testing.T, addr, id string) (mqtt.Client, <-chan error) {
	t.Helper()
	lost := make(chan error, 1)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost <- err }))
	if tok := c.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		t.Fatalf("MQTT connect to %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(250) })
	return c, lost
}

func pahoPublish(t *testing.T, c mqtt.Client, topic string, qos byte, payload string) error {
	t.Helper()
	tok := c.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(waitTimeout) {
		t.Fatalf("MQTT publish to %q: no acknowledgement within %s", topic, waitTimeout)
	}
	return tok.Error()
}

func TestMQTTPublishersReachTheStreamInOrderWithTheirDevice(t *testing.T) {
	sc, tmp := standaloneMQTT(t, wire.DefaultMaxMessageBytes, "telemetry=SpmcRing:64@devices.*.telemetry")
	col := stream(t, sc.client(t, "telemetry"))
	col.waitConnected(t)
	pub, _ := pahoClient(t, sc.MQTTAddr(), "gw-1")

	// dev-001 numbers 1..6 and never sends 4: one value lost upstream.
	seqs := []uint64{1, 2, 3, 5, 6}
	for i, seq := range seqs {
		qos := byte(i % 3) // 0, 1 and 2 alike reach NATS subscribers
		payload := fmt.Sprintf(`{"device":"dev-001","seq":%d,"temperature":%d}`, seq, 20+seq)
		if err := pahoPublish(t, pub, "devices/dev-001/telemetry", qos, payload); err != nil {
			t.Fatalf("publish seq %d at QoS %d: %v", seq, qos, err)
		}
	}
	for i, seq := range seqs {
		v := col.next(t)
		if v.Seq != uint64(i+1) || v.Subject != "devices.dev-001.telemetry" || v.Device != "dev-001" || v.DeviceSeq != seq || !v.JSON {
			t.Fatalf("value %d: got seq %d subject %q device %q deviceSeq %d json %v, want seq %d on devices.dev-001.telemetry from dev-001 numbered %d, JSON",
				i, v.Seq, v.Subject, v.Device, v.DeviceSeq, v.JSON, i+1, seq)
		}
	}
	eventually(t, func() float64 {
		return sc.metric(t, `recbuf_intake_upstream_gap_values_total{namespace="default",record="telemetry"}`)
	}).Should(gomega.Equal(1.0))

	sc.stop(t)
	entries, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "recbuf-jetstream-") {
			t.Errorf("JetStream store %s left behind after the process stopped", e.Name())
		}
	}
}

func TestMosquittoPubReachesTheStream(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Skip("mosquitto_pub not installed (Debian: apt-get install mosquitto-clients; CI installs it)")
	}
	sc, _ := standaloneMQTT(t, wire.DefaultMaxMessageBytes, "state=SpmcRing:64@devices.state")
	col := stream(t, sc.client(t, "state"))
	col.waitConnected(t)
	host, port, _ := strings.Cut(sc.MQTTAddr(), ":")
	for i, qos := range []string{"0", "1", "2"} {
		payload := fmt.Sprintf(`{"device":"mcu-7","seq":%d,"state":"on"}`, i+1)
		out, err := exec.Command(bin, "-h", host, "-p", port, "-V", "mqttv311", "-i", "mosq-"+qos,
			"-q", qos, "-t", "devices/state", "-m", payload).CombinedOutput()
		if err != nil {
			t.Fatalf("mosquitto_pub -q %s: %v: %s", qos, err, out)
		}
	}
	for i := range 3 {
		v := col.next(t)
		if v.Seq != uint64(i+1) || v.Device != "mcu-7" || v.DeviceSeq != uint64(i+1) || v.Subject != "devices.state" {
			t.Fatalf("value %d: got seq %d device %q deviceSeq %d subject %q, want seq %d from mcu-7 numbered %d on devices.state",
				i, v.Seq, v.Device, v.DeviceSeq, v.Subject, i+1, i+1)
		}
	}
}

func TestBadMQTTInputIsRefusedAndNeverReachesTheBuffer(t *testing.T) {
	const maxMessageBytes = 1000
	sc, _ := standaloneMQTT(t, maxMessageBytes, "all=SpmcRing:64@in.>")
	// nats-server refuses each of these by closing the publisher's
	// connection: the client sees it lost, the buffer sees nothing.
	cases := []struct {
		name    string
		topic   string
		payload string
	}{
		{name: "a publish on a single-level wildcard topic", topic: "in/+/x", payload: "w"},
		{name: "a publish on a multi-level wildcard topic", topic: "in/#", payload: "w"},
		{name: "a publish on a topic that is not valid UTF-8", topic: "in/\xff\xfe", payload: "u"},
		{name: "a publish with a NUL in its topic", topic: "in/a\x00b", payload: "n"},
		{name: "a publish with white space in its topic", topic: "in/a b", payload: "s"},
		{name: "a payload over NATS's max_payload", topic: "in/big", payload: strings.Repeat("x", wire.DefaultMaxMessageBytes+1)},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, lost := pahoClient(t, sc.MQTTAddr(), "bad-"+strconv.Itoa(i))
			if err := pahoPublish(t, c, tc.topic, 1, tc.payload); err == nil {
				t.Errorf("publish acknowledged, want the connection closed")
			}
			select {
			case err := <-lost:
				t.Logf("connection closed: %v", err)
			case <-time.After(waitTimeout):
				t.Fatal("connection not closed")
			}
		})
	}
	// The process is unharmed: a good publisher still gets through, and a
	// payload the server takes but the record's limit does not is counted.
	good, _ := pahoClient(t, sc.MQTTAddr(), "good")
	if err := pahoPublish(t, good, "in/big", 1, strings.Repeat("x", maxMessageBytes+1)); err != nil {
		t.Fatal(err)
	}
	if err := pahoPublish(t, good, "in/ok", 1, "fine"); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() float64 { return sc.metric(t, `recbuf_buffer_produced_total{namespace="default",record="all"}`) }).Should(gomega.Equal(1.0))
	eventually(t, func() float64 {
		return sc.metric(t, `recbuf_intake_dropped_total{namespace="default",reason="oversized",record="all"}`)
	}).Should(gomega.Equal(1.0))
	v, err := sc.client(t, "all").Latest(context.Background())
	if err != nil || string(v.Payload) != "fine" || v.Subject != "in.ok" {
		t.Errorf("Latest: got %q on %q (%v), want the good publisher's \"fine\" on in.ok", v.Payload, v.Subject, err)
	}
	select {
	case <-sc.Done():
		t.Errorf("the process stopped: %v", sc.Wait())
	default:
	}
}

func TestAnMQTTPublishWithQoS3ClosesThePublishersConnectionOnly(t *testing.T) {
	// No MQTT client sends QoS 3, so this speaks the protocol by hand.
	sc, _ := standaloneMQTT(t, wire.DefaultMaxMessageBytes, "all=SpmcRing:8@in.>")
	conn, err := net.DialTimeout("tcp", sc.MQTTAddr(), waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(waitTimeout))
	connect := []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 3, 'r', 'a', 'w'}
	if _, err := conn.Write(connect); err != nil {
		t.Fatal(err)
	}
	connack := make([]byte, 4)
	if _, err := io.ReadFull(conn, connack); err != nil || connack[0] != 0x20 || connack[3] != 0 {
		t.Fatalf("CONNACK: got % x (%v), want 20 02 00 00", connack, err)
	}
	// PUBLISH, QoS bits 11, topic "in/q", packet id 1, payload "x".
	if _, err := conn.Write([]byte{0x36, 9, 0, 4, 'i', 'n', '/', 'q', 0, 1, 'x'}); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Read(make([]byte, 16)); !errors.Is(err, io.EOF) {
		t.Fatalf("after a QoS 3 PUBLISH: read %d bytes (%v), want the connection closed", n, err)
	}
	good, _ := pahoClient(t, sc.MQTTAddr(), "after-qos3")
	if err := pahoPublish(t, good, "in/ok", 1, "fine"); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() float64 { return sc.metric(t, `recbuf_buffer_produced_total{namespace="default",record="all"}`) }).Should(gomega.Equal(1.0))
}

func TestARetainedMQTTMessageReachesOnlyABufferAlreadySubscribed(t *testing.T) {
	ns := natsServer(t, natstest.WithMQTT(t))
	base := ns.Interest("in.before")
	before := start(t, testConfig(ns.URL(), latest("before")))
	eventually(t, func() int { return ns.Interest("in.before") }).Should(gomega.Equal(base + 1))
	pub, _ := pahoClient(t, ns.MQTTAddr(), "retainer")
	for _, topic := range []string{"in/before", "in/after"} {
		tok := pub.Publish(topic, 1, true, `{"state":"on"}`)
		if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
			t.Fatalf("retained publish to %s: %v", topic, tok.Error())
		}
	}
	eventually(t, func() error { _, err := before.client(t, "before").Latest(context.Background()); return err }).Should(gomega.Succeed())

	// NATS holds the retained message for MQTT subscribers that come
	// later... The server indexes a retained message after it acknowledged
	// the publish (processRetainedMsg, from its own JetStream consumer), so
	// a subscriber can come before the index has it: subscribers are tried
	// until one gets it.
	subscribers := 0
	eventually(t, func() string {
		subscribers++
		got := make(chan string, 1)
		sub, _ := pahoClient(t, ns.MQTTAddr(), fmt.Sprintf("late-mqtt-subscriber-%d", subscribers))
		if tok := sub.Subscribe("in/after", 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
			t.Fatalf("MQTT subscribe: %v", tok.Error())
		}
		select {
		case p := <-got:
			return p
		case <-time.After(time.Second): // this subscriber came too early
			return ""
		}
	}).Should(gomega.Equal(`{"state":"on"}`), "a late MQTT subscriber gets the retained message")
	// ...but a buffer process subscribes as a NATS client: one started
	// after the publish holds nothing until the device publishes again.
	// (The late MQTT subscribers are interest in in.after too.)
	base = ns.Interest("in.after")
	after := start(t, testConfig(ns.URL(), latest("after")))
	eventually(t, func() int { return ns.Interest("in.after") }).Should(gomega.Equal(base + 1))
	if v, err := after.client(t, "after").Latest(context.Background()); !errors.Is(err, client.ErrNoValue) {
		t.Errorf("Latest of a SingleLatest started after the retained publish: got %q (%v), want ErrNoValue", v.Payload, err)
	}
	if err := pahoPublish(t, pub, "in/after", 1, `{"state":"off"}`); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() string {
		v, _ := after.client(t, "after").Latest(context.Background())
		return string(v.Payload)
	}).Should(gomega.Equal(`{"state":"off"}`), "the next publish arrives")
}

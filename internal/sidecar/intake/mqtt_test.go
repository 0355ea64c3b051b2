package intake_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/sidecar/intake"
	"github.com/recbuf/recbuf/internal/wire"
)

// mqttMsg is a message as nats-server delivers one an MQTT client published.
func mqttMsg(data string) *nats.Msg {
	return &nats.Msg{Subject: "s", Data: []byte(data), Header: headers(wire.HeaderMQTT, "1")}
}

func TestMQTTMessagesCarryTheDeviceInTheirPayload(t *testing.T) {
	cases := []struct {
		name       string
		msg        *nats.Msg
		wantDevice string
		wantSeq    uint64
	}{
		{name: "an MQTT message names its device and sequence in JSON fields",
			msg: mqttMsg(`{"device":"dev-001","seq":7,"temperature":21.5}`), wantDevice: "dev-001", wantSeq: 7},
		{name: "the fields may come in any order, after nested objects",
			msg: mqttMsg(` {"reading":{"seq":99,"device":"inner"},"seq":3 , "device":"dev-002"}`), wantDevice: "dev-002", wantSeq: 3},
		{name: "a device without a sequence is taken along alone",
			msg: mqttMsg(`{"device":"dev-003"}`), wantDevice: "dev-003"},
		{name: "a sequence without a device counts for the unnamed device",
			msg: mqttMsg(`{"seq":4}`), wantSeq: 4},
		{name: "a sequence that is not a positive integer is ignored, the device kept",
			msg: mqttMsg(`{"device":"d","seq":"4"}`), wantDevice: "d"},
		{name: "a fractional sequence is ignored",
			msg: mqttMsg(`{"device":"d","seq":4.5}`), wantDevice: "d"},
		{name: "a sequence of zero is ignored",
			msg: mqttMsg(`{"device":"d","seq":0}`), wantDevice: "d"},
		{name: "a device that is not a string is ignored, the sequence kept",
			msg: mqttMsg(`{"device":42,"seq":5}`), wantSeq: 5},
		{name: "an over-long device is ignored",
			msg: mqttMsg(`{"device":"` + strings.Repeat("d", wire.MaxDeviceLen+1) + `","seq":5}`), wantSeq: 5},
		{name: "a JSON payload that is not an object carries no device",
			msg: mqttMsg(`["device","seq"]`)},
		{name: "a payload that is not JSON carries no device",
			msg: mqttMsg(`device=d seq=1`)},
		{name: "a NATS message without headers keeps its payload opaque",
			msg: &nats.Msg{Subject: "s", Data: []byte(`{"device":"d","seq":1}`)}},
		{name: "a NATS message with other headers keeps its payload opaque",
			msg: &nats.Msg{Subject: "s", Data: []byte(`{"device":"d","seq":1}`), Header: headers("X", "y")}},
		{name: "device headers win over the payload's fields",
			msg: &nats.Msg{Subject: "s", Data: []byte(`{"device":"p","seq":1}`),
				Header: headers(wire.HeaderMQTT, "0", wire.HeaderDevice, "h", wire.HeaderDeviceSeq, "9")},
			wantDevice: "h", wantSeq: 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			buf := newRing(t)
			r, err := buf.Subscribe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			in := intake.New(buf, intake.Config{Subject: "s", Logger: slog.New(slog.DiscardHandler)})
			in.HandleMsg(tc.msg)
			if st := in.Stats(); st.Received != 1 || st.Dropped() != 0 {
				t.Fatalf("got stats %+v, want the message taken in, whatever its fields", st)
			}
			it, err := r.TryRecv()
			if err != nil {
				t.Fatal(err)
			}
			if it.Value.Device != tc.wantDevice || it.Value.DeviceSeq != tc.wantSeq {
				t.Errorf("got device %q seq %d, want %q seq %d", it.Value.Device, it.Value.DeviceSeq, tc.wantDevice, tc.wantSeq)
			}
		})
	}
}

func TestUpstreamGapsAreCountedForMQTTPublishers(t *testing.T) {
	in := intake.New(newRing(t), intake.Config{Subject: "s", Logger: slog.New(slog.DiscardHandler)})
	for _, p := range []string{
		`{"device":"a","seq":1}`, `{"device":"b","seq":1}`,
		`{"device":"a","seq":4}`, // 2 and 3 lost: 2
		`{"device":"b","seq":2}`,
		`{"device":"b","seq":"x"}`, // no usable sequence: not counted either way
		`{"device":"b","seq":4}`,   // 3 lost: 1
	} {
		in.HandleMsg(mqttMsg(p))
	}
	if got := in.Stats().UpstreamGaps; got != 3 {
		t.Errorf("got %d upstream gap values, want 3", got)
	}
}

// BenchmarkHandleMsgDevice is the intake's cost per message with the
// device named the NATS way (headers) and the MQTT way (payload fields),
// against BenchmarkHandleMsg's message without either.
func BenchmarkHandleMsgDevice(b *testing.B) {
	payload := []byte(`{"device":"dev-001","seq":123456,"time":"2026-11-27T06:24:46.925Z","temperature":19.55,"humidity":44.8,"battery":3.625,"x":"xx"}`)
	for _, bc := range []struct {
		name   string
		header nats.Header
	}{
		{"nats-headers", headers(wire.HeaderDevice, "dev-001", wire.HeaderDeviceSeq, "123456")},
		{"mqtt-fields", headers(wire.HeaderMQTT, "1")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf, err := buffer.New[wire.Message](buffer.TypeSpmcRing, 1024)
			if err != nil {
				b.Fatal(err)
			}
			in := intake.New(buf, intake.Config{Subject: "s", Logger: slog.New(slog.DiscardHandler)})
			m := &nats.Msg{Subject: "s", Data: payload, Header: bc.header}
			b.ReportAllocs()
			for b.Loop() {
				in.HandleMsg(m)
			}
		})
	}
}

package wire_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/wire"
)

func msg(data string) wire.Message {
	return wire.Message{
		Data:     []byte(data),
		Received: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		Subject:  "devices.telemetry",
		JSON:     wire.IsJSON([]byte(data)),
	}
}

// readOne parses the single event in stream.
func readOne(t *testing.T, stream []byte) wire.Event {
	t.Helper()
	r := wire.NewEventReader(bytes.NewReader(stream), 0)
	ev, err := r.Next()
	if err != nil {
		t.Fatalf("Next: %v (stream %q)", err, stream)
	}
	ev.Data = bytes.Clone(ev.Data)
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("second Next: got %v, want io.EOF", err)
	}
	return ev
}

func TestValueEventRoundTrip(t *testing.T) {
	cases := []struct {
		name     string
		data     string
		wantJSON bool
		// want is the payload the consumer gets, when it differs from data.
		want string
	}{
		{name: "a JSON object is embedded as is", data: `{"temp":21.5,"ok":true}`, wantJSON: true},
		{name: "a JSON number is embedded as is", data: `42`, wantJSON: true},
		{name: "the JSON literal null stays null", data: `null`, wantJSON: true},
		{name: "plain text goes as base64", data: "hello"},
		{name: "binary bytes go as base64", data: "\x00\xff\x10binary\n"},
		{name: "an empty payload goes as empty base64", data: ""},
		{name: "JSON with invalid UTF-8 goes as base64", data: "\"\xff\""},
		{name: "line breaks in JSON arrive as spaces", data: "{\n  \"a\": 1\n}", wantJSON: true, want: "{   \"a\": 1 }"},
		{name: "CRLF line breaks in JSON arrive as two spaces", data: "{\r\n\"a\": 1\r\n}", wantJSON: true, want: "{  \"a\": 1  }"},
		{name: "a lone CR in JSON arrives as a space", data: "[1,\r2]", wantJSON: true, want: "[1, 2]"},
		{name: "escaped line breaks in a JSON string stay escaped", data: `{"a":"x\ny"}`, wantJSON: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := msg(tc.data)
			m.Device, m.DeviceSeq = "dev-\"7\"", 9
			ev := readOne(t, wire.AppendValueEvent(nil, "inst", 17, &m))
			if ev.Type != wire.EventValue || ev.ID != "inst-17" {
				t.Fatalf("got type %q id %q, want %q inst-17", ev.Type, ev.ID, wire.EventValue)
			}
			var env wire.Envelope
			if err := json.Unmarshal(ev.Data, &env); err != nil {
				t.Fatalf("decode %q: %v", ev.Data, err)
			}
			want := tc.want
			if want == "" {
				want = tc.data
			}
			if got := string(env.Payload()); got != want {
				t.Errorf("got payload %q, want %q", got, want)
			}
			if got := env.JSON != nil; got != tc.wantJSON {
				t.Errorf("got JSON %v, want %v", got, tc.wantJSON)
			}
			if env.Seq != 17 || env.Subject != m.Subject || env.Device != m.Device || env.DeviceSeq != 9 || !env.Time.Equal(m.Received) {
				t.Errorf("got envelope %+v, want seq 17, subject, device, deviceSeq 9 and time of %+v", env, m)
			}
		})
	}
}

func TestEnvelopeLeavesOutAbsentDeviceFields(t *testing.T) {
	m := msg(`1`)
	got := string(wire.AppendEnvelope(nil, 3, &m))
	want := `{"seq":3,"time":"2026-01-02T03:04:05.000006Z","subject":"devices.telemetry","json":1}`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestControlEvents(t *testing.T) {
	cases := []struct {
		name     string
		stream   []byte
		wantType string
		want     any
		into     any
	}{
		{name: "a lag event carries the number missed", stream: wire.AppendLagEvent(nil, 12),
			wantType: wire.EventLag, want: &wire.LagData{Missed: 12}, into: &wire.LagData{}},
		{name: "a reset event carries the position and why", stream: wire.AppendResetEvent(nil, 90, 10, "ahead"),
			wantType: wire.EventReset, want: &wire.ResetData{After: 90, LastSeq: 10, Reason: "ahead"}, into: &wire.ResetData{}},
		{name: "a backfill event carries the count and the newest value's sequence", stream: wire.AppendBackfillEvent(nil, 5, 1104),
			wantType: wire.EventBackfill, want: &wire.BackfillData{Count: 5, LastSeq: 1104}, into: &wire.BackfillData{}},
		{name: "an end event carries its reason", stream: wire.AppendEndEvent(nil, "closed"),
			wantType: wire.EventEnd, want: &wire.EndData{Reason: "closed"}, into: &wire.EndData{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := readOne(t, tc.stream)
			if ev.Type != tc.wantType {
				t.Fatalf("got type %q, want %q", ev.Type, tc.wantType)
			}
			if err := json.Unmarshal(ev.Data, tc.into); err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(tc.into)
			want, _ := json.Marshal(tc.want)
			if !bytes.Equal(got, want) {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}

func TestEventReader(t *testing.T) {
	stream := "retry: 1500\n\n" +
		": heartbeat\n\n" +
		"id: 1\ndata: one\n\n" +
		"event: lag\ndata: {\"missed\":2}\n\n" +
		"id: 4\r\ndata: a\r\ndata:b\r\n\r\n" +
		"data: no id keeps the last one\n\n" +
		"id\ndata: an empty id field clears it\n\n" +
		"data: cut off at the end"
	r := wire.NewEventReader(strings.NewReader(stream), 0)
	want := []wire.Event{
		{Type: wire.EventValue, ID: "1", Data: []byte("one"), Retry: 1500 * time.Millisecond},
		{Type: wire.EventLag, ID: "1", Data: []byte(`{"missed":2}`), Retry: 1500 * time.Millisecond},
		{Type: wire.EventValue, ID: "4", Data: []byte("a\nb"), Retry: 1500 * time.Millisecond},
		{Type: wire.EventValue, ID: "4", Data: []byte("no id keeps the last one"), Retry: 1500 * time.Millisecond},
		{Type: wire.EventValue, ID: "", Data: []byte("an empty id field clears it"), Retry: 1500 * time.Millisecond},
	}
	for i, w := range want {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if got.Type != w.Type || got.ID != w.ID || string(got.Data) != string(w.Data) || got.Retry != w.Retry {
			t.Errorf("event %d: got %+v (data %q), want %+v (data %q)", i, got, got.Data, w, w.Data)
		}
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("after the last event: got %v, want io.EOF", err)
	}
}

func TestEventReaderRefusesOverlongLines(t *testing.T) {
	r := wire.NewEventReader(strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 64)
	if _, err := r.Next(); !errors.Is(err, wire.ErrLineTooLong) {
		t.Errorf("got %v, want ErrLineTooLong", err)
	}
}

func TestAppendValueEventDoesNotAllocate(t *testing.T) {
	m := msg(`{"device":"dev-001","temperature":21.5}`)
	buf := make([]byte, 0, 4096)
	allocs := testing.AllocsPerRun(1000, func() {
		buf = wire.AppendValueEvent(buf[:0], "c9e464bb5516de19", 123456, &m)
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per event, want 0", allocs)
	}
}

func FuzzValueEventRoundTrip(f *testing.F) {
	for _, s := range []string{`{"a":1}`, "\x00\x01", "", "{\r\n}", `"\u2028"`, "[1,\r2]", "\xff"} {
		f.Add([]byte(s), "dev-1")
	}
	f.Fuzz(func(t *testing.T, data []byte, device string) {
		m := wire.Message{Data: data, Subject: "s", Device: device, JSON: wire.IsJSON(data)}
		event := wire.AppendValueEvent(nil, "i", 1, &m)
		if n := bytes.Count(event, []byte("\ndata:")); n != 1 {
			t.Fatalf("got %d data lines in %q, want 1", n, event)
		}
		var w bytes.Buffer
		if _, err := wire.WriteValueEvent(&w, nil, "i", 1, &m); err != nil || !bytes.Equal(w.Bytes(), event) {
			t.Fatalf("WriteValueEvent: got %q %v, want AppendValueEvent's %q", w.Bytes(), err, event)
		}
		r := wire.NewEventReader(bytes.NewReader(event), 0)
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		var env wire.Envelope
		if err := json.Unmarshal(ev.Data, &env); err != nil {
			t.Fatalf("decode %q: %v", ev.Data, err)
		}
		got := env.Payload()
		if m.JSON {
			// White space may change; the JSON value may not.
			var a, b any
			_ = json.Unmarshal(data, &a)
			if err := json.Unmarshal(got, &b); err != nil {
				t.Fatalf("payload %q is no longer JSON: %v", got, err)
			}
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if !bytes.Equal(ja, jb) {
				t.Fatalf("got JSON %s, want %s", jb, ja)
			}
		} else if !bytes.Equal(got, data) {
			t.Fatalf("got payload %q, want %q", got, data)
		}
	})
}

func TestDefaultSubject(t *testing.T) {
	if got, want := wire.DefaultSubject("plant", "boiler"), "records.plant.boiler"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestAJSONPayloadOfLineBreaksMakesAnEventOfItsOwnSize: line breaks in a
// JSON payload are white space between tokens (a JSON string cannot hold
// one unescaped), so an event carries them as spaces, on one data line. A
// "data: " per line would make a payload of line breaks seven times its
// size on the wire and in the stream's buffer.
func TestAJSONPayloadOfLineBreaksMakesAnEventOfItsOwnSize(t *testing.T) {
	payload := []byte("[" + strings.Repeat("\n", 1<<20-4) + "1]")
	m := msg(string(payload))
	if !m.JSON {
		t.Fatal("the payload is not JSON")
	}
	event := wire.AppendValueEvent(nil, "c9e464bb5516de19", 1, &m)
	if got, limit := len(event), len(payload)+512; got > limit {
		t.Errorf("got an event of %d bytes for a payload of %d, want at most %d", got, len(payload), limit)
	}
	ev := readOne(t, event)
	var env wire.Envelope
	if err := json.Unmarshal(ev.Data, &env); err != nil {
		t.Fatal(err)
	}
	var v []int
	if err := json.Unmarshal(env.Payload(), &v); err != nil || len(v) != 1 || v[0] != 1 {
		t.Errorf("got payload %v %v, want [1]", v, err)
	}
}

// countingWriter records the size of every Write.
type countingWriter struct {
	bytes.Buffer
	writes []int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	return w.Buffer.Write(p)
}

// TestWriteValueEventWritesInPieces: WriteValueEvent and WriteEnvelope
// write what AppendValueEvent and AppendEnvelope append, after what the
// buffer already held, in writes of at most 32 KiB and a little, so that a
// large value needs no buffer of its size.
func TestWriteValueEventWritesInPieces(t *testing.T) {
	cases := []struct {
		name string
		data []byte
	}{
		{name: "a small JSON value", data: []byte(`{"a":1}`)},
		{name: "a megabyte of JSON with line breaks", data: []byte(`{"a":"` + strings.Repeat("x", 1<<19) + "\"\r\n,\"b\":[" + strings.Repeat("1,\n", 1<<17) + "2]}")},
		{name: "a megabyte of binary", data: bytes.Repeat([]byte{0xff, 0, 7}, 1<<20/3+1)},
		{name: "an empty payload", data: nil},
		{name: "binary whose base64 is just over a piece", data: bytes.Repeat([]byte{1}, 24<<10+1)},
	}
	const maxWrite = 32<<10 + 1024
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := msg(string(tc.data))
			m.Device = "dev-1"
			pending := []byte(": pending\n\n")
			var w countingWriter
			buf, err := wire.WriteValueEvent(&w, append([]byte(nil), pending...), "inst", 9, &m)
			if err != nil {
				t.Fatal(err)
			}
			want := wire.AppendValueEvent(append([]byte(nil), pending...), "inst", 9, &m)
			if !bytes.Equal(w.Bytes(), want) {
				t.Fatalf("WriteValueEvent wrote %d bytes unlike AppendValueEvent's %d", w.Len(), len(want))
			}
			if len(buf) != 0 || cap(buf) > maxWrite {
				t.Errorf("got the buffer back with length %d and capacity %d, want empty and at most %d", len(buf), cap(buf), maxWrite)
			}
			for _, n := range w.writes {
				if n > maxWrite {
					t.Errorf("got a write of %d bytes, want at most %d", n, maxWrite)
				}
			}

			w = countingWriter{}
			if _, err := wire.WriteEnvelope(&w, nil, 9, &m); err != nil {
				t.Fatal(err)
			}
			if want := wire.AppendEnvelope(nil, 9, &m); !bytes.Equal(w.Bytes(), want) {
				t.Fatalf("WriteEnvelope wrote %d bytes unlike AppendEnvelope's %d", w.Len(), len(want))
			}
		})
	}
}

package valueout_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/valueout"
	"github.com/recbuf/recbuf/pkg/client"
)

var at = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestPrinter(t *testing.T) {
	cases := []struct {
		name             string
		format           valueout.Format
		print            func(p *valueout.Printer) error
		wantOut, wantErr string
	}{
		{name: "a JSON value prints as its sequence and compact JSON on one line", format: valueout.Text,
			print: func(p *valueout.Printer) error {
				return p.Value(client.Value{Seq: 7, Payload: []byte("{\"t\": 21.5,\n \"ok\": true}"), JSON: true})
			},
			wantOut: "7 {\"t\":21.5,\"ok\":true}\n"},
		{name: "a payload that is not JSON prints quoted, never over two lines", format: valueout.Text,
			print: func(p *valueout.Printer) error {
				return p.Value(client.Value{Seq: 8, Payload: []byte("hi\nthere\x00")})
			},
			wantOut: "8 \"hi\\nthere\\x00\"\n"},
		{name: "an empty payload prints as an empty string", format: valueout.Text,
			print:   func(p *valueout.Printer) error { return p.Value(client.Value{Seq: 9, Payload: []byte{}}) },
			wantOut: "9 \"\"\n"},
		{name: "in text, a lag goes to standard error as a remark", format: valueout.Text,
			print:   func(p *valueout.Printer) error { return p.Lag(80) },
			wantErr: "# lag: missed 80 values, evicted before they could be read\n"},
		{name: "in text, a reset goes to standard error with its reason", format: valueout.Text,
			print: func(p *valueout.Printer) error {
				return p.Reset(client.Reset{After: 50, LastSeq: 3, Reason: "instance"})
			},
			wantErr: "# reset: position 50 is not this buffer process's (instance); it starts afresh at its newest 3\n"},
		{name: "in text, a backfill goes to standard error with its count", format: valueout.Text,
			print:   func(p *valueout.Printer) error { return p.Backfill(client.Backfill{Count: 5, LastSeq: 1104}) },
			wantErr: "# backfill: 5 values held, through 1104, then live\n"},
		{name: "in JSON, a value is recbufctl's value line", format: valueout.JSON,
			print: func(p *valueout.Printer) error {
				return p.Value(client.Value{Seq: 7, Time: at, Device: "d1", DeviceSeq: 3, Payload: []byte(`{"t":1}`), JSON: true})
			},
			wantOut: `{"event":"value","seq":7,"time":"2026-12-01T12:00:00Z","device":"d1","deviceSeq":3,"payload":{"t":1}}` + "\n"},
		{name: "in JSON, a payload that is not JSON is base64 bytes", format: valueout.JSON,
			print:   func(p *valueout.Printer) error { return p.Value(client.Value{Seq: 1, Time: at, Payload: []byte("hi")}) },
			wantOut: `{"event":"value","seq":1,"time":"2026-12-01T12:00:00Z","bytes":"aGk="}` + "\n"},
		{name: "in JSON, a lag is an event line on standard output", format: valueout.JSON,
			print:   func(p *valueout.Printer) error { return p.Lag(80) },
			wantOut: `{"event":"lag","missed":80}` + "\n"},
		{name: "in JSON, a backfill is an event line on standard output", format: valueout.JSON,
			print:   func(p *valueout.Printer) error { return p.Backfill(client.Backfill{Count: 5, LastSeq: 1104}) },
			wantOut: `{"count":5,"event":"backfill","lastSeq":1104}` + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := tc.print(&valueout.Printer{Format: tc.format, Out: &out, Err: &errOut}); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.wantOut || errOut.String() != tc.wantErr {
				t.Errorf("got stdout %q and stderr %q, want %q and %q", out.String(), errOut.String(), tc.wantOut, tc.wantErr)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	for _, s := range []string{"json", "text"} {
		if f, err := valueout.ParseFormat(s); err != nil || string(f) != s {
			t.Errorf("ParseFormat(%q): got %q, %v", s, f, err)
		}
	}
	if _, err := valueout.ParseFormat("yaml"); err == nil {
		t.Error("ParseFormat(yaml): got no error, want one")
	}
}

// Package valueout prints a record's values and stream events as the
// command-line clients show them: JSON lines ({"event":"value",...}, the
// format of recbufctl and of `kubectl recbuf -o json`) or text (one line
// per value, "SEQ PAYLOAD", for a terminal). Its functions are safe for
// concurrent use; a Printer is for one goroutine.
package valueout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/recbuf/recbuf/pkg/client"
)

// ValueLine is one value as a JSON line.
type ValueLine struct {
	Event     string          `json:"event"`
	Seq       uint64          `json:"seq"`
	Time      time.Time       `json:"time"`
	Device    string          `json:"device,omitempty"`
	DeviceSeq uint64          `json:"deviceSeq,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	// Bytes carries a payload that is not JSON (base64 in JSON).
	Bytes []byte `json:"bytes,omitempty"`
}

// NewValueLine returns v's JSON line.
func NewValueLine(v client.Value) ValueLine {
	l := ValueLine{Event: "value", Seq: v.Seq, Time: v.Time, Device: v.Device, DeviceSeq: v.DeviceSeq}
	if v.JSON {
		l.Payload = v.Payload
	} else {
		l.Bytes = v.Payload
	}
	return l
}

// Format is how a Printer prints.
type Format string

const (
	// JSON prints one JSON object per line, values and events alike.
	JSON Format = "json"
	// Text prints "SEQ PAYLOAD" per value on standard output, and events
	// as lines starting with "# " on standard error, so that a pipe gets
	// the values only.
	Text Format = "text"
)

// ParseFormat returns the Format named s.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case JSON, Text:
		return f, nil
	}
	return "", fmt.Errorf("output %q is neither json nor text", s)
}

// Printer prints values and events in one Format.
type Printer struct {
	Format Format
	// Out receives values, and events in JSON; Err events in Text.
	Out, Err io.Writer
}

// Value prints one value.
func (p *Printer) Value(v client.Value) error {
	if p.Format == JSON {
		return p.json(NewValueLine(v))
	}
	_, err := fmt.Fprintf(p.Out, "%d %s\n", v.Seq, TextPayload(v))
	return err
}

// Lag prints a lag event: missed values were evicted before they could be
// read.
func (p *Printer) Lag(missed uint64) error {
	return p.event(map[string]any{"event": "lag", "missed": missed},
		fmt.Sprintf("lag: missed %d values, evicted before they could be read", missed))
}

// Reset prints a reset event.
func (p *Printer) Reset(r client.Reset) error {
	return p.event(map[string]any{"event": "reset", "after": r.After, "lastSeq": r.LastSeq, "reason": r.Reason},
		fmt.Sprintf("reset: position %d is not this buffer process's (%s); it starts afresh at its newest %d", r.After, r.Reason, r.LastSeq))
}

// Backfill prints a backfill event.
func (p *Printer) Backfill(b client.Backfill) error {
	return p.event(map[string]any{"event": "backfill", "count": b.Count, "lastSeq": b.LastSeq},
		fmt.Sprintf("backfill: %d values held, through %d, then live", b.Count, b.LastSeq))
}

// Note prints a remark on the command's progress (as an event "note").
func (p *Printer) Note(msg string) error {
	return p.event(map[string]any{"event": "note", "message": msg}, msg)
}

func (p *Printer) event(obj map[string]any, text string) error {
	if p.Format == JSON {
		return p.json(obj)
	}
	_, err := fmt.Fprintf(p.Err, "# %s\n", text)
	return err
}

func (p *Printer) json(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	_, err = p.Out.Write(append(b, '\n'))
	return err
}

// TextPayload is a value's payload on one line: compact JSON for a JSON
// payload, else a Go-quoted string (escapes for what is not printable), so
// that a value never spans lines.
func TextPayload(v client.Value) string {
	if v.JSON {
		var b bytes.Buffer
		if json.Compact(&b, v.Payload) == nil {
			return b.String()
		}
	}
	return strconv.Quote(string(v.Payload))
}

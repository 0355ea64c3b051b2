package wire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Envelope is the decoded form of what AppendEnvelope writes.
type Envelope struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Subject   string    `json:"subject"`
	Device    string    `json:"device,omitempty"`
	DeviceSeq uint64    `json:"deviceSeq,omitempty"`
	// JSON is the payload when it is JSON (including the JSON literal null).
	JSON json.RawMessage `json:"json,omitempty"`
	// Base64 is the payload when it is not JSON.
	Base64 []byte `json:"base64,omitempty"`
}

// Payload returns the value's bytes, whichever way they were encoded.
func (e *Envelope) Payload() []byte {
	if e.JSON != nil {
		return e.JSON
	}
	if e.Base64 == nil {
		return []byte{}
	}
	return e.Base64
}

// LagData is the data of a lag event.
type LagData struct {
	Missed uint64 `json:"missed"`
}

// ResetData is the data of a reset event.
type ResetData struct {
	After   uint64 `json:"after"`
	LastSeq uint64 `json:"lastSeq"`
	Reason  string `json:"reason"`
}

// BackfillData is the data of a backfill event.
type BackfillData struct {
	Count   uint64 `json:"count"`
	LastSeq uint64 `json:"lastSeq"`
}

// EndData is the data of an end event.
type EndData struct {
	Reason string `json:"reason"`
}

// ErrLineTooLong is returned by EventReader.Next for a line longer than
// the reader's limit.
var ErrLineTooLong = errors.New("sse line too long")

// Event is one dispatched SSE event.
type Event struct {
	// Type is the "event:" field, EventValue when absent.
	Type string
	// ID is the last event id seen on the stream so far, as SSE defines it
	// (an event without an "id:" line keeps the previous one).
	ID string
	// Data is the event's data lines joined by "\n". It is only valid until
	// the next call to Next.
	Data []byte
	// Retry is the latest "retry:" hint, 0 if none was sent.
	Retry time.Duration
}

// EventReader parses a text/event-stream. It accepts "\n" and "\r\n" line
// ends (not a lone "\r").
type EventReader struct {
	br      *bufio.Reader
	maxLine int
	line    []byte
	data    []byte
	typ     string
	lastID  string
	retry   time.Duration
}

// NewEventReader reads events from r; lines longer than maxLine bytes fail
// with ErrLineTooLong (maxLine <= 0: 16 MiB).
func NewEventReader(r io.Reader, maxLine int) *EventReader {
	if maxLine <= 0 {
		maxLine = 16 << 20
	}
	return &EventReader{br: bufio.NewReaderSize(r, 64<<10), maxLine: maxLine}
}

// Next returns the next event. At the end of the stream it returns io.EOF
// (an event cut off by the end is discarded, as SSE requires).
func (r *EventReader) Next() (Event, error) {
	r.data = r.data[:0]
	r.typ = ""
	hasData := false
	for {
		line, err := r.readLine()
		if err != nil {
			return Event{}, err
		}
		if len(line) == 0 {
			if !hasData {
				r.typ = ""
				continue
			}
			typ := r.typ
			if typ == "" {
				typ = EventValue
			}
			data := r.data
			if n := len(data); n > 0 && data[n-1] == '\n' {
				data = data[:n-1]
			}
			return Event{Type: typ, ID: r.lastID, Data: data, Retry: r.retry}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			r.data = append(r.data, value...)
			r.data = append(r.data, '\n')
			hasData = true
		case "event":
			r.typ = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				r.lastID = string(value)
			}
		case "retry":
			if ms, err := strconv.ParseUint(string(value), 10, 32); err == nil {
				r.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}

func (r *EventReader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(r.line)+len(chunk) > r.maxLine {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, r.maxLine)
		}
		switch {
		case err == nil:
			if len(r.line) == 0 {
				return trimEOL(chunk), nil
			}
			r.line = append(r.line, chunk...)
			return trimEOL(r.line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			r.line = append(r.line, chunk...)
		default:
			// A line cut off by the end of the stream is dropped with it.
			return nil, err
		}
	}
}

func trimEOL(b []byte) []byte {
	b = b[:len(b)-1]
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

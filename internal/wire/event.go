package wire

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"
)

// Event types of the SSE stream. A value event has no "event:" line, so
// browsers' EventSource delivers it to onmessage; the others are named.
const (
	// EventValue is the type of value events ("message" is SSE's default).
	EventValue = "message"
	// EventLag precedes the next value when values were missed; its data is
	// {"missed":N}.
	EventLag = "lag"
	// EventReset says the requested resume position is not one this
	// buffer process numbered (another instance, or beyond its newest
	// value); the stream starts afresh: a ring from its oldest value, the
	// other types with their current value.
	EventReset = "reset"
	// EventBackfill is the first event of a stream opened with ?last=N: its
	// data is {"count":C,"lastSeq":S}, the C values up to S (the newest
	// when the stream subscribed) come next, then the live ones.
	EventBackfill = "backfill"
	// EventEnd is the last event before the server ends a stream because the
	// buffer closed (shutdown); clients should reconnect.
	EventEnd = "end"
)

// AppendEnvelope appends the JSON envelope of one value:
//
//	{"seq":42,"time":"2026-01-02T03:04:05.123Z","subject":"devices.telemetry",
//	 "device":"dev-1","deviceSeq":7,"json":{"temp":21.5}}
//
// with "base64":"..." instead of "json" when the payload is not JSON.
// "device" and "deviceSeq" are left out when the message had none.
func AppendEnvelope(dst []byte, seq uint64, m *Message) []byte {
	dst = appendEnvelopeHead(dst, seq, m)
	if m.JSON {
		dst = append(dst, m.Data...)
	} else {
		dst = base64.StdEncoding.AppendEncode(dst, m.Data)
	}
	return appendEnvelopeTail(dst, m)
}

// appendEnvelopeHead appends the envelope up to its payload: through
// `"json":` or `"base64":"`.
func appendEnvelopeHead(dst []byte, seq uint64, m *Message) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = m.Received.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","subject":`...)
	dst = appendString(dst, m.Subject)
	if m.Device != "" {
		dst = append(dst, `,"device":`...)
		dst = appendString(dst, m.Device)
	}
	if m.DeviceSeq != 0 {
		dst = append(dst, `,"deviceSeq":`...)
		dst = strconv.AppendUint(dst, m.DeviceSeq, 10)
	}
	if m.JSON {
		return append(dst, `,"json":`...)
	}
	return append(dst, `,"base64":"`...)
}

// appendEnvelopeTail appends what follows the payload in the envelope.
func appendEnvelopeTail(dst []byte, m *Message) []byte {
	if m.JSON {
		return append(dst, '}')
	}
	return append(dst, `"}`...)
}

// AppendValueEvent appends the SSE event for value seq numbered by
// instance: its event id "<instance>-<seq>" (see ParseEventID) and the
// envelope as one data line. Line breaks in a JSON payload become spaces:
// outside its strings, which cannot hold one unescaped, they are only
// white space, so the JSON value is the same, and an event is never much
// larger than its payload (base64: 4/3 of it), as it would be with a
// "data: " field per line.
func AppendValueEvent(dst []byte, instance string, seq uint64, m *Message) []byte {
	dst = appendValueEventHead(dst, instance, seq, m)
	if m.JSON {
		dst = appendOneLine(dst, m.Data)
	} else {
		dst = base64.StdEncoding.AppendEncode(dst, m.Data)
	}
	dst = appendEnvelopeTail(dst, m)
	return append(dst, "\n\n"...)
}

func appendValueEventHead(dst []byte, instance string, seq uint64, m *Message) []byte {
	dst = append(dst, "id: "...)
	dst = AppendEventID(dst, instance, seq)
	dst = append(dst, "\ndata: "...)
	return appendEnvelopeHead(dst, seq, m)
}

// appendOneLine appends JSON text with its line breaks as spaces. Device
// payloads rarely have any, so it first looks for one.
func appendOneLine(dst, data []byte) []byte {
	start := len(dst)
	dst = append(dst, data...)
	if bytes.IndexByte(data, '\n') < 0 && bytes.IndexByte(data, '\r') < 0 {
		return dst
	}
	for i := start; i < len(dst); i++ {
		if c := dst[i]; c == '\n' || c == '\r' {
			dst[i] = ' '
		}
	}
	return dst
}

// AppendLagEvent appends a lag event: the reader missed exactly missed
// values, and the next value event is the oldest one still retained.
func AppendLagEvent(dst []byte, missed uint64) []byte {
	dst = append(dst, "event: lag\ndata: {\"missed\":"...)
	dst = strconv.AppendUint(dst, missed, 10)
	return append(dst, "}\n\n"...)
}

// AppendResetEvent appends a reset event: the resume position after (from
// another instance, or beyond lastSeq) means nothing here.
func AppendResetEvent(dst []byte, after, lastSeq uint64, reason string) []byte {
	dst = append(dst, "event: reset\ndata: {\"after\":"...)
	dst = strconv.AppendUint(dst, after, 10)
	dst = append(dst, `,"lastSeq":`...)
	dst = strconv.AppendUint(dst, lastSeq, 10)
	dst = append(dst, `,"reason":`...)
	dst = appendString(dst, reason)
	return append(dst, "}\n\n"...)
}

// AppendBackfillEvent appends a backfill event: the stream starts with
// the count values up to lastSeq that the ring held.
func AppendBackfillEvent(dst []byte, count, lastSeq uint64) []byte {
	dst = append(dst, "event: backfill\ndata: {\"count\":"...)
	dst = strconv.AppendUint(dst, count, 10)
	dst = append(dst, `,"lastSeq":`...)
	dst = strconv.AppendUint(dst, lastSeq, 10)
	return append(dst, "}\n\n"...)
}

// AppendEndEvent appends the event that ends a stream.
func AppendEndEvent(dst []byte, reason string) []byte {
	dst = append(dst, "event: end\ndata: {\"reason\":"...)
	dst = appendString(dst, reason)
	return append(dst, "}\n\n"...)
}

// AppendRetry appends the SSE field that tells clients how long to wait
// before reconnecting.
func AppendRetry(dst []byte, d time.Duration) []byte {
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, d.Milliseconds(), 10)
	return append(dst, "\n\n"...)
}

// Heartbeat is the SSE comment the server sends on an idle stream so that
// proxies keep it open. Clients ignore it.
const Heartbeat = ": heartbeat\n\n"

const hex = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD as
// encoding/json does.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

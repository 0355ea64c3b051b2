package wire

import (
	"encoding/base64"
	"fmt"
	"io"
)

// PieceBytes is about the most WriteValueEvent and WriteEnvelope write at
// once: a value of any size goes out in pieces through a buffer of about
// this size, instead of a buffer of the value's size, which a stream would
// keep (or a thousand answers hold at once) long after the value was sent.
const PieceBytes = 32 << 10

// WriteValueEvent writes pending (bytes already encoded, e.g. the events
// before this one) followed by AppendValueEvent's event, in writes of about
// PieceBytes, using pending's array for the pieces. It returns that array
// emptied, for the caller to reuse; it grows only to about the larger of
// PieceBytes and what pending held.
func WriteValueEvent(w io.Writer, pending []byte, instance string, seq uint64, m *Message) ([]byte, error) {
	buf := appendValueEventHead(pending, instance, seq, m)
	buf, err := writePayload(w, buf, m, "\n\n")
	if err != nil {
		return buf, fmt.Errorf("write value event %d: %w", seq, err)
	}
	return buf, nil
}

// WriteEnvelope writes AppendEnvelope's envelope without building it
// whole: a JSON payload is written as it is, straight from m.Data (which w
// may cut into pieces as it likes), a base64 one is encoded in pieces of
// about PieceBytes through buf's array, which it returns emptied for reuse.
func WriteEnvelope(w io.Writer, buf []byte, seq uint64, m *Message) ([]byte, error) {
	buf = appendEnvelopeHead(buf[:0], seq, m)
	var err error
	if m.JSON {
		if _, err = w.Write(buf); err == nil {
			if _, err = w.Write(m.Data); err == nil {
				_, err = w.Write(appendEnvelopeTail(buf[:0], m))
			}
		}
		buf = buf[:0]
	} else {
		buf, err = writePayload(w, buf, m, "")
	}
	if err != nil {
		return buf, fmt.Errorf("write envelope %d: %w", seq, err)
	}
	return buf, nil
}

// writePayload writes buf, then m's payload encoded as in a value event
// (JSON on one line, or base64), the envelope's tail and end, in writes of
// about PieceBytes.
func writePayload(w io.Writer, buf []byte, m *Message, end string) ([]byte, error) {
	data := m.Data
	for {
		room := max(PieceBytes-len(buf), 0)
		if m.JSON {
			n := min(len(data), room)
			buf = appendOneLine(buf, data[:n])
			data = data[n:]
		} else {
			// Whole groups of 3 bytes, so that the pieces' base64 joins up
			// into the base64 of the whole; only the last one is padded.
			n := min(len(data), room/4*3)
			buf = base64.StdEncoding.AppendEncode(buf, data[:n])
			data = data[n:]
		}
		if len(data) == 0 {
			break
		}
		if _, err := w.Write(buf); err != nil {
			return buf[:0], err
		}
		buf = buf[:0]
	}
	buf = appendEnvelopeTail(buf, m)
	buf = append(buf, end...)
	_, err := w.Write(buf)
	return buf[:0], err
}

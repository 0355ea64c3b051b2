package wire

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// DeviceFromJSON returns the device and sequence that an MQTT payload names
// in its top-level FieldDevice and FieldDeviceSeq fields, for data that
// IsJSON accepts (anything else names none).
//
// A field is used only when it is usable: the device a JSON string of at
// most MaxDeviceLen bytes, the sequence a plain integer in 1..2^64-1 ("7",
// not 7.0, 7e0 or "7"). Keys match exactly, and the last of duplicate keys
// wins, as encoding/json's map decoding does. It walks the object's top
// level once and allocates only the device's string: intake calls it for
// every MQTT message, where encoding/json cost six times the rest of intake.
func DeviceFromJSON(data []byte) (device string, seq uint64) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return "", 0
	}
	var rawDevice, rawSeq []byte
	i = skipSpace(data, i+1)
	for i < len(data) && data[i] == '"' {
		end, ok := scanString(data, i)
		if !ok {
			return "", 0
		}
		key := data[i:end]
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return "", 0
		}
		start := skipSpace(data, i+1)
		if i, ok = skipValue(data, start); !ok {
			return "", 0
		}
		switch {
		case keyIs(key, FieldDevice):
			rawDevice = data[start:i]
		case keyIs(key, FieldDeviceSeq):
			rawSeq = data[start:i]
		}
		i = skipSpace(data, i)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	if d, ok := jsonString(rawDevice); ok && len(d) <= MaxDeviceLen {
		device = d
	}
	if n, err := strconv.ParseUint(string(rawSeq), 10, 64); err == nil && n > 0 {
		seq = n
	}
	return device, seq
}

// keyIs reports whether a quoted JSON key is name. Keys with escapes
// (rare) are decoded first.
func keyIs(quoted []byte, name string) bool {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return len(quoted) == len(name)+2 && string(quoted[1:len(quoted)-1]) == name
	}
	s, ok := jsonString(quoted)
	return ok && s == name
}

// jsonString decodes a JSON string value; ok is false for anything else.
func jsonString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// skipValue returns the end of the JSON value that starts at i, in data
// that validJSON accepted.
func skipValue(data []byte, i int) (int, bool) {
	if i >= len(data) {
		return i, false
	}
	switch data[i] {
	case '"':
		return scanString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				end, ok := scanString(data, i)
				if !ok {
					return end, false
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
			i++
		}
		return i, false
	default:
		// A number or a literal: it ends where the object goes on.
		for i < len(data) {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i, true
			}
			i++
		}
		return i, true
	}
}

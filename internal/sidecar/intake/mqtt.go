package intake

import (
	"encoding/json"
	"strconv"

	"github.com/recbuf/recbuf/internal/wire"
)

// deviceFields are the top-level fields of an MQTT payload that name the
// device and its sequence. They stay raw so that a field of an unexpected
// type spoils only itself, not its neighbour.
type deviceFields struct {
	Device json.RawMessage `json:"device"`
	Seq    json.RawMessage `json:"seq"`
}

// readDeviceFields sets msg's device and sequence from the payload of a
// message an MQTT client published: MQTT 3.1.1 has no headers, so devices
// put wire.FieldDevice and wire.FieldDeviceSeq in their JSON object.
//
// Unlike a malformed device header, an unusable field never drops the
// message: the payload is the device's own data, whose "seq" may mean
// something else, so a field that is not a string of at most
// wire.MaxDeviceLen bytes, or not a positive integer, is ignored and the
// value is taken in without it.
func readDeviceFields(data []byte, msg *wire.Message) {
	if !isObject(data) {
		return
	}
	var f deviceFields
	if json.Unmarshal(data, &f) != nil {
		return
	}
	var device string
	if json.Unmarshal(f.Device, &device) == nil && len(device) <= wire.MaxDeviceLen {
		msg.Device = device
	}
	// ParseUint takes plain digits only: "4.5", "4e2", "-1" and "\"4\"" fail.
	if seq, err := strconv.ParseUint(string(f.Seq), 10, 64); err == nil && seq > 0 {
		msg.DeviceSeq = seq
	}
}

// isObject reports whether a valid JSON value is an object.
func isObject(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == '{'
	}
	return false
}

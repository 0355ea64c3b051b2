package intake

import "github.com/recbuf/recbuf/internal/wire"

// readDeviceFields sets msg's device and sequence from the JSON payload of
// a message an MQTT client published: MQTT 3.1.1 has no headers, so
// devices put wire.FieldDevice and wire.FieldDeviceSeq in their object.
//
// Unlike a malformed device header, an unusable field never drops the
// message: the payload is the device's own data, whose "seq" may mean
// something else, so wire.DeviceFromJSON ignores a field it cannot use and
// the value is taken in without it.
func readDeviceFields(data []byte, msg *wire.Message) {
	msg.Device, msg.DeviceSeq = wire.DeviceFromJSON(data)
}

package wire_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/recbuf/recbuf/internal/wire"
)

// deviceFromJSONReference is wire.DeviceFromJSON's rules spelt out with
// encoding/json, to check the fast walk against.
func deviceFromJSONReference(data []byte) (string, uint64) {
	var fields map[string]json.RawMessage
	if !wire.IsJSON(data) || json.Unmarshal(data, &fields) != nil {
		return "", 0
	}
	var device string
	if raw := fields[wire.FieldDevice]; len(raw) > 0 && raw[0] == '"' {
		if json.Unmarshal(raw, &device) != nil || len(device) > wire.MaxDeviceLen {
			device = ""
		}
	}
	seq, err := strconv.ParseUint(string(fields[wire.FieldDeviceSeq]), 10, 64)
	if err != nil {
		seq = 0
	}
	return device, seq
}

func TestDeviceFromJSON(t *testing.T) {
	cases := []struct {
		name       string
		data       string
		wantDevice string
		wantSeq    uint64
	}{
		{"both fields are read", `{"device":"dev-001","seq":7}`, "dev-001", 7},
		{"fields after nested values are read", `{"a":{"device":"x","seq":[1,{"seq":2}]},"b":"}\"{","device":"d","seq":3}`, "d", 3},
		{"nested fields are not the device's", `{"reading":{"device":"inner","seq":9}}`, "", 0},
		{"white space anywhere is fine", " {\n\t\"seq\" : 5 ,\r\n \"device\" : \"d\" } ", "d", 5},
		{"the last of duplicate keys wins", `{"seq":1,"seq":2,"device":"a","device":"b"}`, "b", 2},
		{"an escaped device is decoded", `{"device":"d\u00e9v\"1"}`, "dév\"1", 0},
		{"an escaped key matches", `{"d\u0065vice":"d","s\u0065q":4}`, "d", 4},
		{"keys match case-sensitively", `{"Device":"d","SEQ":4}`, "", 0},
		{"a quoted sequence is ignored", `{"device":"d","seq":"4"}`, "d", 0},
		{"a fractional sequence is ignored", `{"seq":4.0}`, "", 0},
		{"an exponent sequence is ignored", `{"seq":4e2}`, "", 0},
		{"a negative sequence is ignored", `{"seq":-4}`, "", 0},
		{"a zero sequence is ignored", `{"seq":0}`, "", 0},
		{"a sequence past 2^64-1 is ignored", `{"seq":18446744073709551616}`, "", 0},
		{"the largest sequence is read", `{"seq":18446744073709551615}`, "", 18446744073709551615},
		{"a device that is no string is ignored", `{"device":true,"seq":1}`, "", 1},
		{"a device of 256 bytes is read", `{"device":"` + strings.Repeat("d", 256) + `"}`, strings.Repeat("d", 256), 0},
		{"a device over 256 bytes is ignored", `{"device":"` + strings.Repeat("d", 257) + `"}`, "", 0},
		{"an array is no object", `["device","seq"]`, "", 0},
		{"an empty object names none", `{}`, "", 0},
		{"a string names none", `"device"`, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !wire.IsJSON([]byte(tc.data)) {
				t.Fatalf("case %q is not JSON", tc.data)
			}
			d, s := wire.DeviceFromJSON([]byte(tc.data))
			if d != tc.wantDevice || s != tc.wantSeq {
				t.Errorf("DeviceFromJSON(%.60q): got (%q, %d), want (%q, %d)", tc.data, d, s, tc.wantDevice, tc.wantSeq)
			}
			if rd, rs := deviceFromJSONReference([]byte(tc.data)); rd != d || rs != s {
				t.Errorf("the encoding/json reference gets (%q, %d)", rd, rs)
			}
		})
	}
}

func FuzzDeviceFromJSON(f *testing.F) {
	for _, s := range []string{`{"device":"dev-001","seq":7,"t":[1,{"a":"]"}]}`, `{"seq":1,"seq":2}`, `{"d\u0065vice":"x"}`, `{`, `[{"seq":1}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, s := wire.DeviceFromJSON(data) // never panics, JSON or not
		if !wire.IsJSON(data) {
			return
		}
		if rd, rs := deviceFromJSONReference(data); rd != d || rs != s {
			t.Fatalf("DeviceFromJSON(%q): got (%q, %d), the encoding/json reference (%q, %d)", data, d, s, rd, rs)
		}
	})
}

// BenchmarkDeviceFromJSON compares the walk with the encoding/json way.
func BenchmarkDeviceFromJSON(b *testing.B) {
	data := []byte(`{"device":"dev-001","seq":123456,"time":"2026-11-27T06:24:46.925Z","temperature":19.55,"humidity":44.8,"battery":3.625,"x":"xx"}`)
	for _, bc := range []struct {
		name string
		f    func([]byte) (string, uint64)
	}{{"walk", wire.DeviceFromJSON}, {"encoding-json", deviceFromJSONReference}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d, s := bc.f(data); d != "dev-001" || s != 123456 {
					b.Fatalf("got (%q, %d)", d, s)
				}
			}
		})
	}
}

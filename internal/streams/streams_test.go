package streams

import "testing"

func TestName(t *testing.T) {
	tests := []struct {
		name, namespace, record, want string
	}{
		{"a Record gets recbuf_ then its namespace and name", "default", "telemetry", "recbuf_default_telemetry"},
		{"dashes are kept as they are", "team-a", "door-state", "recbuf_team-a_door-state"},
		{"namespace and name split at the only underscore after the prefix", "a-b", "c", "recbuf_a-b_c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Name(tt.namespace, tt.record); got != tt.want {
				t.Errorf("Name(%q, %q) = %q, want %q", tt.namespace, tt.record, got, tt.want)
			}
		})
	}
}

func TestSingleValueMaxBytesHoldsTheLargestValueWithItsSubject(t *testing.T) {
	tests := []struct {
		name       string
		maxMsgSize int32
		want       int64
	}{
		{"the default 1 MiB message with the longest subject", 1 << 20, 1<<20 + 4130},
		{"a one-byte message still has room for its subject and framing", 1, 4131},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SingleValueMaxBytes(tt.maxMsgSize); got != tt.want {
				t.Errorf("SingleValueMaxBytes(%d) = %d, want %d", tt.maxMsgSize, got, tt.want)
			}
		})
	}
}

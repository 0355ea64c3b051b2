package audience_test

import (
	"testing"

	"github.com/recbuf/recbuf/internal/audience"
)

func TestOfNamesOneRecordOfOneNamespace(t *testing.T) {
	tests := []struct {
		namespace, name, want string
	}{
		{"default", "telemetry", "recbuf.dev/default/telemetry"},
		{"sensors", "telemetry", "recbuf.dev/sensors/telemetry"},
		{"sensors", "commands", "recbuf.dev/sensors/commands"},
		{"sensors", "plant.line-1.state", "recbuf.dev/sensors/plant.line-1.state"},
		{"a", "b.c", "recbuf.dev/a/b.c"},
		{"a-b", "c", "recbuf.dev/a-b/c"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := audience.Of(tt.namespace, tt.name)
		if got != tt.want {
			t.Errorf("Of(%q, %q) = %q, want %q", tt.namespace, tt.name, got, tt.want)
		}
		if got == audience.Prefix {
			t.Errorf("Of(%q, %q) is the shared audience %q", tt.namespace, tt.name, audience.Prefix)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("Of(%q, %q) = %q, the audience of %s too", tt.namespace, tt.name, got, other)
		}
		seen[got] = tt.namespace + "/" + tt.name
	}
}

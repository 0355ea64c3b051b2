package bufferpod

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

func TestTheBufferContainerIsSizedFromWhatTheRecordHolds(t *testing.T) {
	cfg := Config{}
	tests := []struct {
		name              string
		rec               *recbufv1alpha1.Record
		request, limit    string
		maxBytesArg       string // "" for none
		wantUserResources bool
	}{
		{
			name:    "a Mailbox of 1 MiB messages",
			rec:     newRecord("ns", "m", recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeMailbox}}),
			request: "42Mi", limit: "92Mi",
		},
		{
			name: "the sample telemetry ring: 1024 values within 64Mi",
			rec: newRecord("ns", "t", recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{
				Type: recbufv1alpha1.BufferTypeSpmcRing, Capacity: ptr.To[int32](1024), MaxBytes: quantity("64Mi")}}),
			request: "121Mi", limit: "171Mi", maxBytesArg: "--buffer-max-bytes=67108864",
		},
		{
			name:    "a ring of 1024 MiB-sized values without maxBytes gets the budget the 1Gi ceiling leaves",
			rec:     newRecord("ns", "r", ringSpec(1024)),
			request: "974Mi", limit: "1Gi", maxBytesArg: "--buffer-max-bytes=782971696",
		},
		{
			name:  "a Record's own resources win, and its limit sizes the budget",
			rec:   newRecord("ns", "r", recbufv1alpha1.RecordSpec{Buffer: ringSpec(1024).Buffer, Resources: memoryLimit("256Mi")}),
			limit: "256Mi", maxBytesArg: "--buffer-max-bytes=138726604", wantUserResources: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c corev1.Container
			MutateContainer(&c, tt.rec, cfg, Own(tt.rec))
			if tt.wantUserResources {
				if len(c.Resources.Requests) != 0 {
					t.Errorf("requests: got %v, want the Record's (none)", c.Resources.Requests)
				}
			} else if got := c.Resources.Requests.Memory().String(); got != tt.request {
				t.Errorf("memory request: got %s, want %s", got, tt.request)
			}
			if got := c.Resources.Limits.Memory().String(); got != tt.limit {
				t.Errorf("memory limit: got %s, want %s", got, tt.limit)
			}
			var budget []string
			for _, a := range c.Args {
				if strings.HasPrefix(a, "--buffer-max-bytes=") {
					budget = append(budget, a)
				}
			}
			if want := tt.maxBytesArg; (want == "" && len(budget) != 0) || (want != "" && (len(budget) != 1 || budget[0] != want)) {
				t.Errorf("byte budget args: got %q, want %q", budget, want)
			}
			var env *corev1.EnvVar
			for i := range c.Env {
				if c.Env[i].Name == "MEMORY_LIMIT" {
					env = &c.Env[i]
				}
			}
			if env == nil || env.ValueFrom == nil || env.ValueFrom.ResourceFieldRef == nil ||
				env.ValueFrom.ResourceFieldRef.Resource != "limits.memory" || env.ValueFrom.ResourceFieldRef.Divisor.String() != "1" {
				t.Errorf("MEMORY_LIMIT: got %+v, want the container's limits.memory in bytes (divisor 1)", env)
			}
		})
	}
}

func newRecord(ns, name string, spec recbufv1alpha1.RecordSpec) *recbufv1alpha1.Record {
	return &recbufv1alpha1.Record{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func ringSpec(capacity int32) recbufv1alpha1.RecordSpec {
	return recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSpmcRing, Capacity: &capacity}}
}

func quantity(s string) *resource.Quantity { return ptr.To(resource.MustParse(s)) }

func memoryLimit(s string) *corev1.ResourceRequirements {
	return &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(s)}}
}

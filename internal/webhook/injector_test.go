package webhook

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/google/go-cmp/cmp"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
	"github.com/recbuf/recbuf/internal/natspolicy"
)

func newRecord(ns, name string, spec recbufv1alpha1.RecordSpec) *recbufv1alpha1.Record {
	return &recbufv1alpha1.Record{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func ringSpec(capacity int32) recbufv1alpha1.RecordSpec {
	return recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSpmcRing, Capacity: &capacity}}
}

func TestParseInjectRequest(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		want        injectRequest
		wantErr     string
	}{
		{"one record gets the default ports on localhost", map[string]string{recbufv1alpha1.AnnotationRecords: "telemetry"},
			injectRequest{records: []string{"telemetry"}, port: 8080, metricsPort: 9090, listenHost: "127.0.0.1"}, ""},
		{"a list keeps its order and ignores spaces", map[string]string{recbufv1alpha1.AnnotationRecords: " telemetry, state ", recbufv1alpha1.AnnotationPort: "7000"},
			injectRequest{records: []string{"telemetry", "state"}, port: 7000, metricsPort: 9090, listenHost: "127.0.0.1"}, ""},
		{"every interface is asked with 0.0.0.0", map[string]string{recbufv1alpha1.AnnotationRecords: "telemetry", recbufv1alpha1.AnnotationListenAddress: "0.0.0.0"},
			injectRequest{records: []string{"telemetry"}, port: 8080, metricsPort: 9090, listenHost: "0.0.0.0"}, ""},
		{"IPv6's loopback is a listen address too", map[string]string{recbufv1alpha1.AnnotationRecords: "telemetry", recbufv1alpha1.AnnotationListenAddress: " ::1 "},
			injectRequest{records: []string{"telemetry"}, port: 8080, metricsPort: 9090, listenHost: "::1"}, ""},
		{"a pod address is refused, since admission cannot know it", map[string]string{recbufv1alpha1.AnnotationRecords: "a", recbufv1alpha1.AnnotationListenAddress: "10.0.0.7"}, injectRequest{},
			`annotation recbuf.dev/listen-address: "10.0.0.7" is neither a loopback address (127.0.0.1, ::1) nor every interface (0.0.0.0, ::)`},
		{"a host name is refused", map[string]string{recbufv1alpha1.AnnotationRecords: "a", recbufv1alpha1.AnnotationListenAddress: "localhost"}, injectRequest{},
			`annotation recbuf.dev/listen-address: "localhost" is neither`},
		{"a missing list is refused", map[string]string{}, injectRequest{}, "annotation recbuf.dev/records is missing"},
		{"a Record of another namespace is refused", map[string]string{recbufv1alpha1.AnnotationRecords: "other/telemetry"}, injectRequest{}, `annotation recbuf.dev/records: Record "other/telemetry": only Records of the pod's own namespace`},
		{"an empty entry is refused", map[string]string{recbufv1alpha1.AnnotationRecords: "a,,b"}, injectRequest{}, "empty Record name"},
		{"a Record listed twice is refused", map[string]string{recbufv1alpha1.AnnotationRecords: "a,a"}, injectRequest{}, `Record "a" is listed twice`},
		{"a port that is not a number is refused", map[string]string{recbufv1alpha1.AnnotationRecords: "a", recbufv1alpha1.AnnotationPort: "http"}, injectRequest{}, `annotation recbuf.dev/port: "http" is not a port`},
		{"a port out of range is refused", map[string]string{recbufv1alpha1.AnnotationRecords: "a", recbufv1alpha1.AnnotationPort: "70000"}, injectRequest{}, "annotation recbuf.dev/port"},
		{"a port range past 65535 is refused", map[string]string{recbufv1alpha1.AnnotationRecords: "a,b", recbufv1alpha1.AnnotationPort: "65535"}, injectRequest{}, "from 1 to 65534"},
		{"overlapping consumer and metrics ports are refused", map[string]string{recbufv1alpha1.AnnotationRecords: "a,b", recbufv1alpha1.AnnotationPort: "9000", recbufv1alpha1.AnnotationMetricsPort: "9001"}, injectRequest{}, "overlap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseInjectRequest(tt.annotations)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(injectRequest{})); diff != "" {
				t.Errorf("got other than wanted (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseInjectRequest(f *testing.F) {
	f.Add("telemetry,state", "8080", "9090")
	f.Add("a/b", "x", "")
	f.Fuzz(func(t *testing.T, records, port, metrics string) {
		req, err := parseInjectRequest(map[string]string{recbufv1alpha1.AnnotationRecords: records, recbufv1alpha1.AnnotationPort: port, recbufv1alpha1.AnnotationMetricsPort: metrics})
		if err != nil {
			return
		}
		if len(req.records) == 0 || req.port < 1 || int(req.port)+len(req.records)-1 > 65535 {
			t.Errorf("accepted %q, %q: %+v", records, port, req)
		}
	})
}

func TestInjectRefusal(t *testing.T) {
	set := func(mutate func(*recbufv1alpha1.Record)) *recbufv1alpha1.Record {
		rec := newRecord("ns", "telemetry", ringSpec(8))
		rec.Status.ObservedGeneration = 1
		mutate(rec)
		return rec
	}
	cfg := Config{NATSPolicy: natspolicy.Policy{DefaultURL: "nats://nats:4222"}, BufferPod: bufferpod.Config{NATSURL: "nats://nats:4222"}}
	tests := []struct {
		name string
		rec  *recbufv1alpha1.Record
		want string
	}{
		{"a set-up ring is injected", set(func(*recbufv1alpha1.Record) {}), ""},
		{"a Record that is not Ready is injected all the same", set(func(r *recbufv1alpha1.Record) {
			r.Status.Conditions = []metav1.Condition{{Type: recbufv1alpha1.ConditionReady, Status: metav1.ConditionFalse}}
		}), ""},
		{"a Mailbox is refused", set(func(r *recbufv1alpha1.Record) {
			r.Spec = recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeMailbox}}
		}), "annotation recbuf.dev/records: Record ns/telemetry is a Mailbox"},
		{"a Record the manager has not set up is refused", set(func(r *recbufv1alpha1.Record) { r.Status.ObservedGeneration = 0 }), "not set up by the manager yet"},
		{"a Record being deleted is refused", set(func(r *recbufv1alpha1.Record) { r.DeletionTimestamp = &metav1.Time{Time: time.Now()} }), "is being deleted"},
		{"credentials for a server the admin does not allow are refused", set(func(r *recbufv1alpha1.Record) {
			r.Spec.Source = &recbufv1alpha1.SourceSpec{NATS: recbufv1alpha1.NATSSource{
				URL: "tls://elsewhere:4222", CredentialsSecretRef: &recbufv1alpha1.SecretReference{Name: "creds"},
			}}
		}), "not among the NATS servers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := injectRefusal(tt.rec, cfg)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

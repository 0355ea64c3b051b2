package natspolicy

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// TestServersAreComparedAsTheRecordsPodsResolveThem: a bare Service name
// is a different server in every namespace, so a Record of team-a naming
// nats://nats:4222 is not the manager's nats://nats:4222 (the manager's
// old default, resolved in the manager's namespace), and its credentials
// do not go there as if it were.
func TestServersAreComparedAsTheRecordsPodsResolveThem(t *testing.T) {
	tests := []struct {
		name       string
		managerURL string
		allowed    []string
		recordURL  string
		wantReason string
	}{
		{"a bare name in a Record is not the manager's bare name", "nats://nats:4222", nil, "nats://nats:4222", recbufv1alpha1.ReasonNATSServerNotAllowed},
		{"a bare name in a Record is not the manager's server of that name in its namespace", "nats://nats.recbuf-system.svc:4222", nil, "nats://nats:4222", recbufv1alpha1.ReasonNATSServerNotAllowed},
		{"a Record naming the manager's server with its namespace is the manager's", "nats://nats.recbuf-system.svc:4222", nil, "nats://nats.recbuf-system:4222", ""},
		{"a Record naming the manager's server with the cluster domain is the manager's", "nats://nats.recbuf-system.svc:4222", nil, "nats://nats.recbuf-system.svc.cluster.local:4222", ""},
		{"an allowed server named without the cluster domain is allowed", "nats://nats.recbuf-system.svc:4222", []string{"tls://nats.nats.svc.cluster.local:4222"}, "tls://nats.nats.svc:4222", ""},
		{"a bare name is allowed only as the Service of the Record's namespace", "nats://nats.recbuf-system.svc:4222", []string{"tls://nats.team-a.svc:4222"}, "tls://nats:4222", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recbufv1alpha1.Record{
				ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "r"},
				Spec: recbufv1alpha1.RecordSpec{Source: &recbufv1alpha1.SourceSpec{NATS: recbufv1alpha1.NATSSource{
					URL: tt.recordURL, CredentialsSecretRef: &recbufv1alpha1.SecretReference{Name: "creds"},
				}}},
			}
			got := Check(rec, Policy{DefaultURL: tt.managerURL, Allowed: tt.allowed})
			if got.Reason != tt.wantReason {
				t.Errorf("got reason %q (%s), want %q", got.Reason, got.Message, tt.wantReason)
			}
		})
	}
}

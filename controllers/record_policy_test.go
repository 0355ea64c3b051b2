package controllers

import (
	"errors"
	"testing"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/natspolicy"
)

// TestTheGatesThatHoldARollout: each gate alone keeps the Record's pods as
// they are.
func TestTheGatesThatHoldARollout(t *testing.T) {
	cfg := Config{NATSURL: "nats://nats.recbuf-system.svc:4222"}
	tests := []struct {
		name     string
		rec      *recbufv1alpha1.Record
		scope    func(*recordScope)
		wantHeld bool
	}{
		{"a Record that passes every gate rolls out", newRecord("ns", "r", ringSpec(8)), nil, false},
		{"credentials bound where the admin does not allow hold it", newRecord("ns", "r", ringSpec(8)),
			func(s *recordScope) {
				s.natsRefusal = natspolicy.Refusal{Reason: recbufv1alpha1.ReasonNATSServerNotAllowed}
			}, true},
		{"consumer authentication the admin has not opted the namespace in to holds it", newRecord("ns", "r", ringSpec(8)),
			func(s *recordScope) { s.consumerAuthRefusal = "no opt-in" }, true},
		{"an adopted stream the manager could not find holds it", newRecord("ns", "r", ringSpec(8)),
			func(s *recordScope) {
				s.stream = &streamObservation{name: "S", err: &streamError{reason: recbufv1alpha1.ReasonStreamNotFound}}
			}, true},
		{"a stream error other than the adopted stream's vetting does not hold it", newRecord("ns", "r", ringSpec(8)),
			func(s *recordScope) {
				s.stream = &streamObservation{name: "S", err: &streamError{reason: recbufv1alpha1.ReasonStreamRefused, err: errors.New("x")}}
			}, false},
		{"a Record that cannot fit its memory limit holds it",
			newRecord("ns", "r", recbufv1alpha1.RecordSpec{Buffer: ringSpec(100000).Buffer, Resources: memoryLimit("64Mi")}), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &recordScope{record: tt.rec, childErrs: childErrors{}}
			if tt.scope != nil {
				tt.scope(s)
			}
			if got := (&RecordReconciler{Config: cfg}).rolloutHeld(s); got != tt.wantHeld {
				t.Errorf("got held %v, want %v", got, tt.wantHeld)
			}
		})
	}
}

func TestChildErrorsAreReportedInTheOrderOfTheChildren(t *testing.T) {
	a, b := errors.New("a"), errors.New("b")
	got := childErrors{kindClusterRoleBinding: b, kindConfigMap: a, kindService: nil}.inOrder()
	if len(got) != 2 || got[0] != (childErr{kindConfigMap, a}) || got[1] != (childErr{kindClusterRoleBinding, b}) {
		t.Errorf("got %v, want the ConfigMap's error, then the ClusterRoleBinding's", got)
	}
}

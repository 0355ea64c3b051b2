package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/wire"
)

// TestTheRecordAPIAndTheBufferProcessAgreeOnDefaults checks the copies the
// API keeps of the buffer process's defaults (api/v1alpha1 imports nothing
// of the module): the manager passes the Record's values to the buffer
// process, and a standalone buffer process uses its own, so a Record and a
// standalone process given the same name must read the same subject and
// take the same messages.
func TestTheRecordAPIAndTheBufferProcessAgreeOnDefaults(t *testing.T) {
	rec := &recbufv1alpha1.Record{ObjectMeta: metav1.ObjectMeta{Namespace: "plant", Name: "boiler"}}
	tests := []struct {
		name      string
		api, wire any
	}{
		{"a Record reads the subject a standalone buffer process reads", rec.DefaultSubject(), wire.DefaultSubject(rec.Namespace, rec.Name)},
		{"a Record takes messages as large as a standalone buffer process does", int64(recbufv1alpha1.DefaultMaxMessageBytes), int64(wire.DefaultMaxMessageBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.api != tt.wire {
				t.Errorf("got %v in api/v1alpha1, want %v as in internal/wire", tt.api, tt.wire)
			}
		})
	}
}

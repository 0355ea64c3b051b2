package bufferpod

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

func TestStreamName(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "plant", Name: "boiler"}
	tests := []struct {
		name        string
		persistence *recbufv1alpha1.PersistenceSpec
		want        string
	}{
		{"a Record without persistence has no stream", nil, ""},
		{"a persistent Record gets the stream the manager owns", &recbufv1alpha1.PersistenceSpec{}, "recbuf_plant_boiler"},
		{"a Record that adopts a stream reads that one", &recbufv1alpha1.PersistenceSpec{Stream: "PLANT"}, "PLANT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recbufv1alpha1.Record{ObjectMeta: meta}
			rec.Spec.Persistence = tt.persistence
			if got := StreamName(rec); got != tt.want {
				t.Errorf("got stream %q, want %q", got, tt.want)
			}
		})
	}
}

package v1alpha1

import (
	"os"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

func TestTheNameRuleOfTheCRDIsMaxNameLength(t *testing.T) {
	if MaxNameLength != 56 {
		t.Errorf("got MaxNameLength %d, want 56 (63 - len(%q))", MaxNameLength, ChildNameSuffix)
	}
	crd, err := os.ReadFile("../../config/crd/bases/recbuf.dev_records.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if rule := "size(self.metadata.name) <= " + strconv.Itoa(MaxNameLength); !strings.Contains(string(crd), rule) {
		t.Errorf("got a CRD without the rule %q, want the marker and MaxNameLength to agree", rule)
	}
}

func TestEffectiveSubject(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "plant", Name: "boiler"}
	tests := []struct {
		name   string
		source *SourceSpec
		want   string
	}{
		{"no source reads the default subject", nil, "records.plant.boiler"},
		{"a source without a subject reads the default subject", &SourceSpec{NATS: NATSSource{QueueGroup: "g"}}, "records.plant.boiler"},
		{"a source with a subject reads it", &SourceSpec{NATS: NATSSource{Subject: "devices.*.temp"}}, "devices.*.temp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Record{ObjectMeta: meta, Spec: RecordSpec{Source: tt.source}}
			if got := r.EffectiveSubject(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if got := r.ChildName(); got != "boiler-recbuf" {
				t.Errorf("got child name %q, want boiler-recbuf", got)
			}
		})
	}
}

// TestTheMessageSizeDefaultOfTheCRDIsDefaultMaxMessageBytes checks the one
// literal that cannot be the constant: the +kubebuilder:default marker of
// spec.maxMessageBytes, as controller-gen wrote it into the CRD. (That the
// buffer process's own default agrees is checked in controllers, which
// imports both.)
func TestTheMessageSizeDefaultOfTheCRDIsDefaultMaxMessageBytes(t *testing.T) {
	if DefaultMaxMessageBytes != 1<<20 {
		t.Errorf("got DefaultMaxMessageBytes %d, want 1 MiB, NATS's default max_payload", DefaultMaxMessageBytes)
	}
	raw, err := os.ReadFile("../../config/crd/bases/recbuf.dev_records.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string `json:"name"`
				Schema struct {
					OpenAPIV3Schema struct {
						Properties struct {
							Spec struct {
								Properties struct {
									MaxMessageBytes struct {
										Default *int64 `json:"default"`
									} `json:"maxMessageBytes"`
								} `json:"properties"`
							} `json:"spec"`
						} `json:"properties"`
					} `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatalf("parse the CRD: %v", err)
	}
	if len(crd.Spec.Versions) == 0 {
		t.Fatal("got a CRD without versions")
	}
	for _, v := range crd.Spec.Versions {
		got := v.Schema.OpenAPIV3Schema.Properties.Spec.Properties.MaxMessageBytes.Default
		if got == nil || *got != DefaultMaxMessageBytes {
			t.Errorf("version %s: got spec.maxMessageBytes default %v, want %d (DefaultMaxMessageBytes): fix the marker in record_types.go",
				v.Name, got, DefaultMaxMessageBytes)
		}
	}
}

package policy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/testutil/kubetest"
	"github.com/recbuf/recbuf/internal/testutil/poll"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	sigsyaml "sigs.k8s.io/yaml"
)

const (
	rootDir  = "../.."
	chartDir = rootDir + "/charts/recbuf"
	// deadline for the API server to start enforcing a policy or to see a
	// namespace's annotation.
	deadline = 30 * time.Second
)

var k8s client.Client

func TestMain(m *testing.M) {
	os.Exit(kubetest.Main(m, nil, func(_ *envtest.Environment, cfg *rest.Config) (func() error, error) {
		var err error
		k8s, err = kubetest.Client(cfg)
		return nil, err
	}))
}

// helm finds the pinned helm: $HELM, bin/helm, or helm on PATH.
func helm(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if p, err := filepath.Abs(filepath.Join(rootDir, "bin", "helm")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("helm")
	if err != nil {
		t.Fatal("helm not found: run `make helm` or set HELM")
	}
	return p
}

// installPolicy renders the chart's subject policy and binding with the
// default values, and helm's --set flags in set, and creates them. The
// release is the policy's name, so that two tests' policies never clash.
func installPolicy(t *testing.T, release string, set ...string) {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", "recbuf-system",
		"--kube-version", "1.34.4", "--show-only", "templates/subject-policy.yaml"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(helm(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template: %v: %s", err, stderr.String())
	}
	var created int
	for doc := range strings.SplitSeq(stdout.String(), "\n---") {
		var meta metav1.TypeMeta
		if err := sigsyaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("rendered document is not YAML: %v\n%s", err, doc)
		}
		var obj client.Object
		switch meta.Kind {
		case "":
			continue
		case "ValidatingAdmissionPolicy":
			obj = &admissionregistrationv1.ValidatingAdmissionPolicy{}
		case "ValidatingAdmissionPolicyBinding":
			obj = &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
		default:
			t.Fatalf("unexpected %s in templates/subject-policy.yaml", meta.Kind)
		}
		if err := sigsyaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("decode %s: %v", meta.Kind, err)
		}
		if err := k8s.Create(context.Background(), obj); err != nil {
			t.Fatalf("create %s: %v", meta.Kind, err)
		}
		// Deleted again, so that the test can run again on one API
		// server (-count).
		t.Cleanup(func() {
			if err := k8s.Delete(context.Background(), obj); err != nil {
				t.Errorf("delete %s: %v", meta.Kind, err)
			}
		})
		created++
	}
	if created != 2 {
		t.Fatalf("templates/subject-policy.yaml rendered %d objects, want a policy and its binding", created)
	}
}

// createNamespace creates a namespace with annotations and returns its name.
func createNamespace(t *testing.T, name string, annotations map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
	// envtest runs no namespace controller, so a namespace is never gone:
	// one left by an earlier run (-count) has the same annotations.
	if err := k8s.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

// record is a valid Record; an empty subject leaves spec.source unset,
// an empty queueGroup spec.source.nats.queueGroup.
func record(namespace, name, subject, queueGroup string) *unstructured.Unstructured {
	spec := map[string]any{"buffer": map[string]any{"type": "SingleLatest"}}
	nats := map[string]any{}
	if subject != "" {
		nats["subject"] = subject
	}
	if queueGroup != "" {
		nats["queueGroup"] = queueGroup
	}
	if len(nats) > 0 {
		spec["source"] = map[string]any{"nats": nats}
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "recbuf.dev/v1alpha1",
		"kind":       "Record",
		"metadata":   map[string]any{"name": name, "namespace": namespace},
		"spec":       spec,
	}}
	return u
}

// create creates a Record and, when admitted, deletes it again, so that
// names can be reused. It returns the admission error.
func create(t *testing.T, namespace, name, subject string) error {
	t.Helper()
	return createInGroup(t, namespace, name, subject, "")
}

// createInGroup is create with a queue group.
func createInGroup(t *testing.T, namespace, name, subject, queueGroup string) error {
	t.Helper()
	r := record(namespace, name, subject, queueGroup)
	err := k8s.Create(context.Background(), r)
	if err == nil {
		if err := k8s.Delete(context.Background(), r); err != nil {
			t.Fatalf("delete Record %s/%s: %v", namespace, name, err)
		}
	}
	return err
}

// waitRefused creates a probe Record until the API server refuses it (the
// policy, or a namespace's annotation, takes a moment to be seen), and
// returns the refusal.
func waitRefused(t *testing.T, namespace, subject string) error {
	t.Helper()
	var err error
	poll.UntilWithin(t, deadline, fmt.Sprintf("a Record on %q in namespace %s is refused", subject, namespace), func() bool {
		err = create(t, namespace, "probe", subject)
		return err != nil
	})
	return err
}

// waitAdmitted creates a probe Record until the API server admits it (a
// deleted policy takes a moment to be forgotten).
func waitAdmitted(t *testing.T, namespace, subject string) {
	t.Helper()
	poll.UntilWithin(t, deadline, fmt.Sprintf("a Record on %q in namespace %s is admitted", subject, namespace), func() bool {
		return create(t, namespace, "probe", subject) == nil
	})
}

func TestSubjectPolicy(t *testing.T) {
	installPolicy(t, "recbuf")
	open := createNamespace(t, "open", nil)
	const reserved = `overlaps the reserved report subjects recbuf.stats.>`
	err := waitRefused(t, open, "recbuf.stats.>")
	if want := `spec.source.nats.subject "recbuf.stats.>" ` + reserved; !strings.Contains(err.Error(), want) {
		t.Fatalf("the policy refused the probe with %q, want a message containing %q", err, want)
	}

	t.Run("reserved report subjects", func(t *testing.T) {
		for _, subject := range []string{"recbuf.stats.>", ">", "recbuf.stats.a.b.c", "recbuf.>", "*.stats.>",
			"recbuf.*.*.*.*", "recbuf.stats.a.b.>", "*.*.*.*.*", "recbuf.stats.*.b.c"} {
			err := create(t, open, "reserved", subject)
			if want := fmt.Sprintf(`spec.source.nats.subject %q %s`, subject, reserved); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Record on %q: got %v, want a refusal containing %q", subject, err, want)
			}
		}
		for _, subject := range []string{"recbuf.statsx.a", "devices.>", "recbuf.stats", "recbuf.stats.a.b.c.d",
			"recbuf.stats.a.b.c.>", "recbuf.*.a", "other.stats.a.b.c", "JS.API.x", "x.$JS.y", "_INBOXES.a"} {
			if err := create(t, open, "free", subject); err != nil {
				t.Errorf("Record on %q: got %v, want it admitted (no report subject matches it)", subject, err)
			}
		}
	})

	// NATS's own subjects: the JetStream API and its advisories, the
	// system account's, MQTT's and the KV and object stores' streams, and
	// request-reply inboxes (whoever reads another client's _INBOX reads
	// its replies).
	t.Run("NATS system subjects are reserved", func(t *testing.T) {
		const system = `overlaps the reserved NATS system subjects $JS.>, $SYS.>, $MQTT.>, $KV.>, $O.>, _INBOX.>`
		for _, subject := range []string{"$JS.API.>", "$JS.API.STREAM.INFO.s", "$SYS.>", "$SYS.ACCOUNT.x.CONNECT", "$MQTT.sess.>",
			"$KV.bucket.key", "$O.store.>", "_INBOX.>", "_INBOX.abc.def", "*.API.>", "*.*.*.*"} {
			err := create(t, open, "system", subject)
			if want := fmt.Sprintf(`spec.source.nats.subject %q %s`, subject, system); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Record on %q: got %v, want a refusal containing %q", subject, err, want)
			}
		}
	})

	t.Run("a queue group is within the Record's namespace", func(t *testing.T) {
		tests := []struct {
			name       string
			queueGroup string
			admitted   bool
		}{
			{"the namespace itself is admitted", "open", true},
			{"a group under the namespace is admitted", "open.telemetry", true},
			{"another namespace's group is refused", "victim", false},
			{"a group under another namespace is refused", "victim.telemetry", false},
			{"a group that only starts with the namespace's letters is refused", "openx.telemetry", false},
			{"a group without a namespace is refused", "workers", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := createInGroup(t, open, "grouped", "devices.telemetry", tt.queueGroup)
				if tt.admitted {
					if err != nil {
						t.Errorf("got %v, want it admitted", err)
					}
					return
				}
				want := fmt.Sprintf(`spec.source.nats.queueGroup %q is not within namespace open: it must be "open" or start with "open."`, tt.queueGroup)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("got %v, want a refusal containing %q", err, want)
				}
			})
		}
	})

	t.Run("an unannotated namespace admits the samples", func(t *testing.T) {
		for _, subject := range []string{"devices.telemetry", "devices.state", "devices.commands", ""} {
			if err := create(t, open, "sample", subject); err != nil {
				t.Errorf("Record on %q: got %v, want it admitted", subject, err)
			}
		}
	})

	t.Run("a namespace restricted to devices.>", func(t *testing.T) {
		ns := createNamespace(t, "tenant", map[string]string{"recbuf.dev/allowed-subjects": "devices.>, telemetry.site1"})
		err := waitRefused(t, ns, "records.other.x")
		want := `spec.source.nats.subject "records.other.x" is not within the subjects that namespace tenant allows ` +
			`(its annotation recbuf.dev/allowed-subjects: "devices.>, telemetry.site1")`
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want a message containing %q", err, want)
		}
		for _, subject := range []string{"devices.x", "devices.a.b", "devices.>", "devices.*", "telemetry.site1"} {
			if err := create(t, ns, "allowed", subject); err != nil {
				t.Errorf("Record on %q: got %v, want it admitted", subject, err)
			}
		}
		for _, subject := range []string{"devices", "devicesx.a", "*.x", ">", "telemetry.site1.a", "telemetry.>", "recbuf.stats.a.b.c"} {
			if err := create(t, ns, "refused", subject); err == nil {
				t.Errorf("Record on %q: admitted, want it refused", subject)
			}
		}
		// The default subject records.tenant.<name> is checked too.
		err = create(t, ns, "unset", "")
		if want := `spec.source.nats.subject (unset, so "records.tenant.unset") is not within`; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Record without a subject: got %v, want a refusal containing %q", err, want)
		}
	})

	t.Run("the CRD's own validation still answers first", func(t *testing.T) {
		err := create(t, open, "invalid", "a..b")
		if want := "spec.source.nats.subject must be dot-separated non-empty tokens"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Record on %q: got %v, want the CRD's message %q", "a..b", err, want)
		}
	})
}

// TestDenyByDefault is the multi-tenant mode (values-multitenant.yaml): a
// namespace the admin has not annotated admits Records only on its own
// subjects records.<namespace>.>, which no other namespace's default
// subjects overlap; the annotation grants more.
func TestDenyByDefault(t *testing.T) {
	ns := createNamespace(t, "unannotated", nil)
	// Registered first, so run last: once the policy is deleted, wait
	// until the API server stops applying it, or the next test (-count)
	// would meet it.
	t.Cleanup(func() { waitAdmitted(t, ns, "devices.telemetry") })
	installPolicy(t, "strict", "subjectPolicy.denyByDefault=true")
	err := waitRefused(t, ns, "devices.telemetry")
	want := `spec.source.nats.subject "devices.telemetry" is not within the subjects that namespace unannotated allows ` +
		`(it has no annotation recbuf.dev/allowed-subjects, so only its own records.unannotated.>)`
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("got %q, want a message containing %q", err, want)
	}

	tests := []struct {
		name     string
		subject  string
		admitted bool
	}{
		{"the default subject is admitted", "", true},
		{"a subject under the namespace's own records is admitted", "records.unannotated.telemetry.eu", true},
		{"all of the namespace's own records is admitted", "records.unannotated.>", true},
		{"another namespace's records are refused", "records.victim.commands", false},
		{"a namespace whose name only starts with this one's is refused", "records.unannotatedx.a", false},
		{"every namespace's records are refused", "records.*.commands", false},
		{"the whole records tree is refused", "records.>", false},
		{"a device subject is refused", "devices.>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := create(t, ns, "probe", tt.subject)
			switch {
			case tt.admitted && err != nil:
				t.Errorf("Record on %q: got %v, want it admitted", tt.subject, err)
			case !tt.admitted && (err == nil || !strings.Contains(err.Error(), "is not within the subjects that namespace unannotated allows")):
				t.Errorf("Record on %q: got %v, want it refused as outside the namespace's subjects", tt.subject, err)
			}
		})
	}

	t.Run("an annotated namespace admits what its annotation names, and nothing else", func(t *testing.T) {
		ns := createNamespace(t, "devices-team", map[string]string{"recbuf.dev/allowed-subjects": "devices.>"})
		if err := create(t, ns, "devices", "devices.telemetry"); err != nil {
			t.Errorf("Record on devices.telemetry: got %v, want it admitted", err)
		}
		if err := create(t, ns, "unset", ""); err == nil {
			t.Error("Record on its default subject: admitted, want it refused (the annotation replaces the default)")
		}
	})
}

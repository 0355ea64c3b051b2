package kubectlplugin_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/testutil/kubetest"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	recbufv1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/kubectlplugin"
)

// The suite runs one API server (envtest): no manager and no kubelet, so
// the tests set the Records' status themselves and reach every step
// before a port-forward, which the e2e suite on kind covers.
var (
	k8s client.Client
	// adminKubeconfig may do anything; nobodyKubeconfig nothing at all.
	adminKubeconfig, nobodyKubeconfig string
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m, nil, setup)) }

// setup makes the clients, and the kubeconfigs of an admin and of a user
// with no permissions, that the plugin runs with.
func setup(env *envtest.Environment, cfg *rest.Config) (func() error, error) {
	var err error
	if k8s, err = kubetest.Client(cfg); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kubectl-recbuf-test")
	if err != nil {
		return nil, err
	}
	teardown := func() error { return os.RemoveAll(dir) }
	for path, user := range map[*string]envtest.User{
		&adminKubeconfig:  {Name: "admin", Groups: []string{"system:masters"}},
		&nobodyKubeconfig: {Name: "nobody"},
	} {
		u, err := env.AddUser(user, nil)
		if err != nil {
			return teardown, err
		}
		kc, err := u.KubeConfig()
		if err != nil {
			return teardown, err
		}
		*path = filepath.Join(dir, user.Name)
		if err := os.WriteFile(*path, kc, 0o600); err != nil {
			return teardown, err
		}
	}
	return teardown, nil
}

// namespace creates a namespace for one test.
func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "plugin-"}}
	if err := k8s.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ns) })
	return ns.Name
}

// record creates a Record of type typ and sets its status as a manager
// would have: Ready with ready's status, reason and message.
func record(t *testing.T, ns, name string, typ recbufv1.BufferType, ready metav1.ConditionStatus, reason, message string) *recbufv1.Record {
	t.Helper()
	rec := &recbufv1.Record{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: recbufv1.RecordSpec{Buffer: recbufv1.BufferSpec{Type: typ}}}
	if typ == recbufv1.BufferTypeSpmcRing {
		rec.Spec.Buffer.Capacity = ptr.To[int32](1024)
	}
	if err := k8s.Create(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	rec.Status = recbufv1.RecordStatus{
		ObservedGeneration: rec.Generation,
		Endpoint:           "http://" + name + "-recbuf." + ns + ".svc:8080/v1/records/" + name,
		Subject:            "devices." + name,
		ReportingPods:      1,
		LastReportTime:     &now,
		RecordCounters:     recbufv1.RecordCounters{Produced: 4821, Delivered: 9642, Subscribers: 2, LastMessageTime: &now},
		Conditions: []metav1.Condition{
			{Type: recbufv1.ConditionReady, Status: ready, Reason: reason, Message: message, ObservedGeneration: rec.Generation, LastTransitionTime: now},
			{Type: recbufv1.ConditionNATSConnected, Status: metav1.ConditionTrue, Reason: recbufv1.ReasonConnected, Message: "every pod is connected", ObservedGeneration: rec.Generation, LastTransitionTime: now},
		},
		Pods: []recbufv1.RecordPodStatus{{Name: name + "-recbuf-6d4cf-x2x9q", Connected: true, Produced: 4821, Subscribers: 2}},
	}
	if err := k8s.Status().Update(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// service creates the Record's Service as the manager does, selecting
// pods that do not exist.
func service(t *testing.T, ns, name string) {
	t.Helper()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromString("http")},
				{Name: "client", Port: 4222, TargetPort: intstr.FromInt32(4222)}}}}
	if err := k8s.Create(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
}

// deployment creates the Record's Deployment with the buffer's args.
func deployment(t *testing.T, ns, name string, args ...string) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "buffer", Image: "recbuf/sidecar:test", Args: args}}}}}}
	if err := k8s.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

// run runs the plugin and returns its exit status, stdout and stderr.
func run(t *testing.T, kubeconfig string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	status := kubectlplugin.Run(ctx, append(args, "--kubeconfig", kubeconfig), &out, &errOut)
	return status, out.String(), errOut.String()
}

func TestStatusSummarisesTheRecord(t *testing.T) {
	ns := namespace(t)
	record(t, ns, "telemetry", recbufv1.BufferTypeSpmcRing, metav1.ConditionTrue, recbufv1.ReasonReady, "the buffer serves")
	status, out, stderr := run(t, adminKubeconfig, "status", "telemetry", "-n", ns, "--rate-window=0")
	if status != 0 {
		t.Fatalf("got exit status %d (%s), want 0", status, stderr)
	}
	for _, want := range []string{
		"Record " + ns + "/telemetry (SpmcRing, capacity 1024): Ready\n",
		"Subject:      devices.telemetry\n",
		"produced      4821   -\n",
		"subscribers   2      (now)\n",
		"telemetry-recbuf-6d4cf-x2x9q  true       4821      2            0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("got status\n%s\nwant it to contain %q", out, want)
		}
	}
	// Ages count from when the helpers wrote the status: a second or two
	// on a loaded machine.
	for _, want := range []string{
		`Last report:  [0-9]s ago`,
		`Ready          True    Ready      [0-9]s     the buffer serves\n`,
		`NATSConnected  True    Connected  [0-9]s     every pod is connected\n`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("got status\n%s\nwant it to match %q", out, want)
		}
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	ns := namespace(t)
	record(t, ns, "telemetry", recbufv1.BufferTypeSpmcRing, metav1.ConditionTrue, recbufv1.ReasonReady, "the buffer serves")
	record(t, ns, "state", recbufv1.BufferTypeSingleLatest, metav1.ConditionTrue, recbufv1.ReasonReady, "the buffer serves")
	record(t, ns, "down", recbufv1.BufferTypeSpmcRing, metav1.ConditionFalse, recbufv1.ReasonDeploymentUnavailable,
		"0 of 1 buffer pods available: pod down-recbuf-1 is CrashLoopBackOff")
	service(t, ns, "down-recbuf")
	record(t, ns, "remote", recbufv1.BufferTypeMailbox, metav1.ConditionTrue, recbufv1.ReasonReady, "the buffer serves")
	deployment(t, ns, "remote-recbuf", "--nats-url=tls://nats.example.com:4222", "--nats-subject=devices.remote")
	record(t, ns, "secret", recbufv1.BufferTypeMailbox, metav1.ConditionTrue, recbufv1.ReasonReady, "the buffer serves")
	deployment(t, ns, "secret-recbuf", "--nats-url=nats://nats."+ns+".svc:4222", "--nats-credentials-dir=/etc/recbuf/nats")
	record(t, ns, "nonats", recbufv1.BufferTypeMailbox, metav1.ConditionTrue, recbufv1.ReasonReady, "the buffer serves")
	deployment(t, ns, "nonats-recbuf", "--nats-url=nats://nats."+ns+".svc:4222")
	service(t, ns, "nats")

	cases := []struct {
		name       string
		kubeconfig string
		args       []string
		wantStderr string
	}{
		{name: "a Record that does not exist is named with its namespace and how to list them",
			args:       []string{"latest", "nope", "-n", ns},
			wantStderr: fmt.Sprintf(`record "nope" not found in namespace %q (kubectl get records -n %s lists them`, ns, ns)},
		{name: "a Record without a Ready pod says why from its Ready condition",
			args: []string{"tail", "down", "-n", ns},
			wantStderr: "record down has no buffer pod to read from: Ready is False (DeploymentUnavailable): " +
				"0 of 1 buffer pods available: pod down-recbuf-1 is CrashLoopBackOff"},
		{name: "take on a ring names its type and what to use instead",
			args:       []string{"take", "telemetry", "-n", ns},
			wantStderr: "take is for Mailbox records; record telemetry is a SpmcRing: read it with latest or stream"},
		{name: "a backfill of a SingleLatest names its type",
			args:       []string{"stream", "state", "-n", ns, "--from", "last=5"},
			wantStderr: "stream --from last=N is for SpmcRing records; record state is a SingleLatest"},
		{name: "a user without permission is told which and how to check",
			kubeconfig: nobodyKubeconfig, args: []string{"status", "telemetry", "-n", ns},
			wantStderr: fmt.Sprintf(`you may not get records in namespace %q (check with: kubectl auth can-i get records -n %s)`, ns, ns)},
		{name: "publish to a NATS server outside the cluster says so",
			args:       []string{"publish", "remote", "x", "-n", ns},
			wantStderr: "record's NATS server nats.example.com:4222 is not a Service in this cluster"},
		{name: "publish to a NATS server that needs credentials says so",
			args:       []string{"publish", "secret", "x", "-n", ns},
			wantStderr: "NATS server needs the credentials of a Secret, which publish does not read"},
		{name: "publish to an in-cluster NATS server without a Ready pod says so",
			args:       []string{"publish", "nonats", "x", "-n", ns},
			wantStderr: fmt.Sprintf("record nonats's NATS server nats://nats.%s.svc:4222: not ready: service %s/nats has no Ready pod (of 0)", ns, ns)},
		{name: "a kubeconfig context that does not exist is named",
			args:       []string{"status", "telemetry", "-n", ns, "--context", "nowhere"},
			wantStderr: `context "nowhere" does not exist`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kc := tc.kubeconfig
			if kc == "" {
				kc = adminKubeconfig
			}
			status, _, stderr := run(t, kc, tc.args...)
			if status != 1 || !strings.Contains(stderr, tc.wantStderr) {
				t.Errorf("got exit status %d and stderr\n%s\nwant 1 and %q", status, stderr, tc.wantStderr)
			}
		})
	}
}

package chart

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	recbufwebhook "github.com/recbuf/recbuf/internal/webhook"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/recbuf/recbuf/controllers"
)

const (
	rootDir  = "../.."
	chartDir = rootDir + "/charts/recbuf"
	// release and namespace of the rendered chart; with release "recbuf"
	// the objects are named recbuf-manager, recbuf-nats, ...
	release   = "recbuf"
	namespace = "recbuf-system"
	// kubeVersion is the kind node's; helm built with `go install` would
	// otherwise assume v1.20, below the chart's kubeVersion.
	kubeVersion = "1.34.4"
)

// helmBinary finds the pinned helm: $HELM, bin/helm, or helm on PATH.
func helmBinary(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if p, err := filepath.Abs(filepath.Join(rootDir, "bin", "helm")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	t.Fatal("helm not found: run `make helm` (installs bin/helm) or set HELM")
	return ""
}

// runHelm runs helm and returns its standard output; the error carries its
// standard error.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), errors.New(strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// template renders the chart (without its CRDs) with --set values.
func template(t *testing.T, sets ...string) (objects, error) {
	t.Helper()
	args := []string{"template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	out, err := runHelm(t, args...)
	if err != nil {
		return nil, err
	}
	return parseObjects(t, out), nil
}

// mustTemplate is template for values that must render.
func mustTemplate(t *testing.T, sets ...string) objects {
	t.Helper()
	objs, err := template(t, sets...)
	if err != nil {
		t.Fatalf("helm template %v: %v", sets, err)
	}
	return objs
}

// objects are rendered Kubernetes objects.
type objects []*unstructured.Unstructured

func parseObjects(t *testing.T, manifest string) objects {
	t.Helper()
	var objs objects
	for doc := range strings.SplitSeq(manifest, "\n---") {
		var m map[string]any
		if err := sigsyaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("rendered document is not YAML: %v\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// find returns the object of kind and name, or nil.
func (o objects) find(kind, name string) *unstructured.Unstructured {
	for _, obj := range o {
		if obj.GetKind() == kind && obj.GetName() == name {
			return obj
		}
	}
	return nil
}

// names lists "Kind/name" of every object, sorted.
func (o objects) names() []string {
	var s []string
	for _, obj := range o {
		s = append(s, obj.GetKind()+"/"+obj.GetName())
	}
	slices.Sort(s)
	return s
}

// get converts the object of kind and name into a typed object, failing the
// test when it is missing.
func get[T any](t *testing.T, objs objects, kind, name string) *T {
	t.Helper()
	obj := objs.find(kind, name)
	if obj == nil {
		t.Fatalf("no %s %q among %v", kind, name, objs.names())
	}
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, out); err != nil {
		t.Fatalf("convert %s %q: %v", kind, name, err)
	}
	return out
}

func manager(t *testing.T, objs objects, name string) (*appsv1.Deployment, corev1.Container) {
	t.Helper()
	d := get[appsv1.Deployment](t, objs, "Deployment", name)
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("manager Deployment has %d containers, want 1", n)
	}
	return d, d.Spec.Template.Spec.Containers[0]
}

// argWithPrefix returns the first argument that starts with prefix.
func argWithPrefix(c corev1.Container, prefix string) (string, bool) {
	for _, a := range c.Args {
		if strings.HasPrefix(a, prefix) {
			return a, true
		}
	}
	return "", false
}

func wantArgs(t *testing.T, c corev1.Container, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(c.Args, w) {
			t.Errorf("manager args %q lack %q", c.Args, w)
		}
	}
}

// checkServiceMonitor finds the ServiceMonitor name, checks what every one
// of the chart's must have (the label the test sets, release=prometheus;
// one endpoint, on port) and returns it with its selector.
func checkServiceMonitor(t *testing.T, objs objects, name, port string) (*unstructured.Unstructured, map[string]string) {
	t.Helper()
	sm := objs.find("ServiceMonitor", name)
	if sm == nil {
		t.Fatalf("no ServiceMonitor %s among %v", name, objs.names())
	}
	if got := sm.GetLabels()["release"]; got != "prometheus" {
		t.Errorf("ServiceMonitor %s label release: got %q, want %q", name, got, "prometheus")
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 || eps[0].(map[string]any)["port"] != port {
		t.Fatalf("ServiceMonitor %s endpoints %v: want one on port %s", name, eps, port)
	}
	sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	return sm, sel
}

// selects reports whether selector matches the pod template's labels.
func selects(selector map[string]string, pod map[string]string) bool {
	return len(selector) > 0 && labels.SelectorFromSet(selector).Matches(labels.Set(pod))
}

func TestLint(t *testing.T) {
	t.Parallel()
	for _, sets := range [][]string{nil, {"nats.enabled=true", "metrics.serviceMonitor.enabled=true", "metrics.bufferServiceMonitor.enabled=true", "dashboards.enabled=true", "prometheusRule.enabled=true"}} {
		args := []string{"lint", chartDir, "--strict", "--kube-version", kubeVersion}
		for _, s := range sets {
			args = append(args, "--set", s)
		}
		if out, err := runHelm(t, args...); err != nil {
			t.Errorf("helm lint %v: %v\n%s", sets, err, out)
		}
	}
}

func TestTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		set   []string
		check func(t *testing.T, objs objects)
	}{
		{
			name: "the defaults render a restricted manager, its RBAC and metrics Service, and no NATS",
			check: func(t *testing.T, objs objects) {
				want := []string{
					"ClusterRole/recbuf-manager", "ClusterRole/recbuf-metrics-auth", "ClusterRole/recbuf-metrics-reader",
					"ClusterRole/recbuf-record-consumer", "ClusterRole/recbuf-record-editor",
					"ClusterRole/recbuf-record-taker", "ClusterRole/recbuf-record-viewer",
					"ClusterRole/recbuf-webhook-cert",
					"ClusterRoleBinding/recbuf-manager", "ClusterRoleBinding/recbuf-metrics-auth", "ClusterRoleBinding/recbuf-webhook-cert",
					"Deployment/recbuf-manager", "MutatingWebhookConfiguration/recbuf-sidecar-injector", "Role/recbuf-leader-election",
					"Role/recbuf-webhook-cert", "RoleBinding/recbuf-leader-election", "RoleBinding/recbuf-webhook-cert",
					"Secret/recbuf-report-master-key", "Secret/recbuf-webhook-cert", "Service/recbuf-manager-metrics", "Service/recbuf-webhook",
					"ServiceAccount/recbuf-manager", "ValidatingAdmissionPolicy/recbuf-record-subjects",
					"ValidatingAdmissionPolicyBinding/recbuf-record-subjects",
				}
				if diff := cmp.Diff(want, objs.names()); diff != "" {
					t.Errorf("rendered objects (-want +got):\n%s", diff)
				}
				d, c := manager(t, objs, "recbuf-manager")
				if got, want := c.Image, "recbuf/manager:dev"; got != want {
					t.Errorf("manager image: got %q, want %q", got, want)
				}
				if got, want := c.ImagePullPolicy, corev1.PullIfNotPresent; got != want {
					t.Errorf("manager imagePullPolicy: got %q, want %q", got, want)
				}
				wantArgs(t, c, "--leader-elect=true", "--health-probe-bind-address=:8081", "--metrics-bind-address=:8443", "--metrics-secure=true",
					"--buffer-image=recbuf/sidecar:dev", "--buffer-image-pull-policy=IfNotPresent",
					"--report-subject-prefix=recbuf.stats", "--report-interval=5s", "--report-stale-after=30s",
					"--report-max-clock-skew=10s", "--buffer-memory-ceiling=1Gi")
				// Fully qualified: every buffer pod resolves it in its own namespace.
				wantArgs(t, c, "--nats-url=nats://nats.recbuf-system.svc:4222")
				// The volumes are the report master key and the webhook's
				// certificates (their own test cases).
				if a, ok := argWithPrefix(c, "--nats-credentials-dir"); ok || len(d.Spec.Template.Spec.Volumes) != 2 ||
					d.Spec.Template.Spec.Volumes[0].Name != "report-master-key" || len(c.VolumeMounts) != 2 {
					t.Errorf("manager got %q, volumes %v and mounts %v, want no NATS credentials by default", a, d.Spec.Template.Spec.Volumes, c.VolumeMounts)
				}
				checkRestricted(t, d.Spec.Template.Spec)
				checkProbes(t, c, 8081)
				if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
					t.Errorf("manager resources %v: want memory requests and limits", c.Resources)
				}

				sa := get[corev1.ServiceAccount](t, objs, "ServiceAccount", "recbuf-manager")
				if got := d.Spec.Template.Spec.ServiceAccountName; got != sa.Name {
					t.Errorf("manager serviceAccountName: got %q, want %q", got, sa.Name)
				}
				crb := get[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding", "recbuf-manager")
				wantSubject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: namespace}}
				if diff := cmp.Diff(wantSubject, crb.Subjects); diff != "" {
					t.Errorf("ClusterRoleBinding subjects (-want +got):\n%s", diff)
				}
				if got, want := crb.RoleRef.Name, "recbuf-manager"; got != want {
					t.Errorf("ClusterRoleBinding roleRef: got %q, want %q", got, want)
				}
				metricsAuth := get[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding", "recbuf-metrics-auth")
				if diff := cmp.Diff(wantSubject, metricsAuth.Subjects); diff != "" || metricsAuth.RoleRef.Name != "recbuf-metrics-auth" {
					t.Errorf("ClusterRoleBinding recbuf-metrics-auth: roleRef %v, subjects (-want +got):\n%s", metricsAuth.RoleRef, diff)
				}
				rb := get[rbacv1.RoleBinding](t, objs, "RoleBinding", "recbuf-leader-election")
				if diff := cmp.Diff(wantSubject, rb.Subjects); diff != "" {
					t.Errorf("leader election RoleBinding subjects (-want +got):\n%s", diff)
				}

				svc := get[corev1.Service](t, objs, "Service", "recbuf-manager-metrics")
				if !selects(svc.Spec.Selector, d.Spec.Template.Labels) {
					t.Errorf("metrics Service selector %v does not select the manager pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
				}
				if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "https" || svc.Spec.Ports[0].Port != 8443 || svc.Spec.Ports[0].TargetPort.StrVal != "metrics" {
					t.Errorf("metrics Service ports %+v: want https 8443 to the container port named metrics", svc.Spec.Ports)
				}
				if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
					t.Errorf("manager selector %v does not select its own pods %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
				}
			},
		},
		{
			name: "nats.enabled deploys a restricted NATS server and points the manager at its Service",
			set:  []string{"nats.enabled=true"},
			check: func(t *testing.T, objs objects) {
				_, c := manager(t, objs, "recbuf-manager")
				wantArgs(t, c, "--nats-url=nats://recbuf-nats.recbuf-system.svc:4222")
				nats := get[appsv1.Deployment](t, objs, "Deployment", "recbuf-nats")
				if got, want := nats.Spec.Template.Spec.Containers[0].Image, "recbuf/nats:dev"; got != want {
					t.Errorf("NATS image: got %q, want %q", got, want)
				}
				checkRestricted(t, nats.Spec.Template.Spec)
				svc := get[corev1.Service](t, objs, "Service", "recbuf-nats")
				if !selects(svc.Spec.Selector, nats.Spec.Template.Labels) {
					t.Errorf("NATS Service selector %v does not select the NATS pods %v", svc.Spec.Selector, nats.Spec.Template.Labels)
				}
				mgr, _ := manager(t, objs, "recbuf-manager")
				if selects(svc.Spec.Selector, mgr.Spec.Template.Labels) {
					t.Errorf("NATS Service selector %v also selects the manager pods", svc.Spec.Selector)
				}
			},
		},
		{
			name: "the in-chart NATS server runs JetStream on a bounded emptyDir and an MQTT listener behind the Service port mqtt",
			set:  []string{"nats.enabled=true"},
			check: func(t *testing.T, objs objects) {
				opts := natsConfig(t, objs)
				if !opts.JetStream || opts.StoreDir != "/data" || opts.JetStreamMaxMemory != 64<<20 || opts.JetStreamMaxStore != 512<<20 || opts.ServerName != "recbuf-nats" {
					t.Errorf("nats.conf: got JetStream %v in %q (memory %d, file %d), server name %q; want JetStream in /data, 64Mi and 512Mi, server name recbuf-nats",
						opts.JetStream, opts.StoreDir, opts.JetStreamMaxMemory, opts.JetStreamMaxStore, opts.ServerName)
				}
				if opts.MQTT.Port != 1883 || opts.Port != 4222 || opts.HTTPPort != 8222 {
					t.Errorf("nats.conf: got ports client %d, monitor %d, MQTT %d; want 4222, 8222, 1883", opts.Port, opts.HTTPPort, opts.MQTT.Port)
				}
				nats := get[appsv1.Deployment](t, objs, "Deployment", "recbuf-nats")
				spec := nats.Spec.Template.Spec
				c := spec.Containers[0]
				if !slices.Equal(c.Args, []string{"--config=/etc/nats/nats.conf"}) {
					t.Errorf("NATS args: got %q, want only the config file", c.Args)
				}
				wantMounts := []corev1.VolumeMount{{Name: "config", MountPath: "/etc/nats", ReadOnly: true}, {Name: "jetstream", MountPath: "/data"}}
				if diff := cmp.Diff(wantMounts, c.VolumeMounts); diff != "" {
					t.Errorf("NATS volume mounts (-want +got):\n%s", diff)
				}
				if len(spec.Volumes) != 2 || spec.Volumes[1].EmptyDir == nil || spec.Volumes[1].EmptyDir.SizeLimit == nil || spec.Volumes[1].EmptyDir.SizeLimit.String() != "1Gi" {
					t.Errorf("NATS volumes %+v: want the config and an emptyDir of at most 1Gi", spec.Volumes)
				}
				checkRestricted(t, spec)
				if nats.Spec.Template.Annotations["recbuf.dev/nats-config-hash"] == "" {
					t.Error("NATS pod template: no config hash annotation, so a changed nats.conf would not restart it")
				}
				svc := get[corev1.Service](t, objs, "Service", "recbuf-nats")
				var mqtt *corev1.ServicePort
				for i, p := range svc.Spec.Ports {
					if p.Name == "mqtt" {
						mqtt = &svc.Spec.Ports[i]
					}
				}
				if mqtt == nil || mqtt.Port != 1883 || mqtt.TargetPort.StrVal != "mqtt" {
					t.Errorf("NATS Service ports %+v: want mqtt 1883 to the container port mqtt", svc.Spec.Ports)
				}
			},
		},
		{
			name: "without JetStream and MQTT the in-chart NATS server has neither, nor their volume and port",
			set:  []string{"nats.enabled=true", "nats.jetstream.enabled=false", "nats.mqtt.enabled=false"},
			check: func(t *testing.T, objs objects) {
				opts := natsConfig(t, objs)
				if opts.JetStream || opts.MQTT.Port != 0 {
					t.Errorf("nats.conf: got JetStream %v, MQTT port %d; want neither", opts.JetStream, opts.MQTT.Port)
				}
				nats := get[appsv1.Deployment](t, objs, "Deployment", "recbuf-nats")
				if n := len(nats.Spec.Template.Spec.Volumes); n != 1 {
					t.Errorf("NATS pod: got %d volumes, want the config's alone", n)
				}
				for _, p := range get[corev1.Service](t, objs, "Service", "recbuf-nats").Spec.Ports {
					if p.Name == "mqtt" {
						t.Errorf("NATS Service has an mqtt port without MQTT")
					}
				}
			},
		},
		{
			name: "natsURL wins over the in-chart NATS server, whose image is configurable",
			set:  []string{"nats.enabled=true", "natsURL=nats://nats.nats.svc:4222", "nats.image.repository=nats", "nats.image.tag=2.15"},
			check: func(t *testing.T, objs objects) {
				_, c := manager(t, objs, "recbuf-manager")
				wantArgs(t, c, "--nats-url=nats://nats.nats.svc:4222")
				nats := get[appsv1.Deployment](t, objs, "Deployment", "recbuf-nats")
				if got, want := nats.Spec.Template.Spec.Containers[0].Image, "nats:2.15"; got != want {
					t.Errorf("NATS image: got %q, want %q", got, want)
				}
			},
		},
		{
			name: "natsCredentialsSecret mounts that Secret read-only into the manager and passes its directory",
			set:  []string{"natsCredentialsSecret=manager-nats", "sidecarInjection.enabled=false"},
			check: func(t *testing.T, objs objects) {
				d, c := manager(t, objs, "recbuf-manager")
				wantArgs(t, c, "--nats-credentials-dir=/etc/recbuf/nats")
				wantMounts := []corev1.VolumeMount{
					{Name: "report-master-key", MountPath: "/etc/recbuf/report-master-key", ReadOnly: true},
					{Name: "nats-credentials", MountPath: "/etc/recbuf/nats", ReadOnly: true},
				}
				if diff := cmp.Diff(wantMounts, c.VolumeMounts); diff != "" {
					t.Errorf("manager volumeMounts (-want +got):\n%s", diff)
				}
				vols := d.Spec.Template.Spec.Volumes
				if len(vols) != 2 || vols[1].Name != "nats-credentials" || vols[1].Secret == nil || vols[1].Secret.SecretName != "manager-nats" {
					t.Errorf("manager volumes %+v: want the Secret volume nats-credentials of manager-nats besides the master key's", vols)
				}
				checkRestricted(t, d.Spec.Template.Spec)
			},
		},
		{
			name: "the chart makes a random report master key Secret and mounts it read-only into the manager as its --report-master-key-file",
			check: func(t *testing.T, objs objects) {
				sec := get[corev1.Secret](t, objs, "Secret", "recbuf-report-master-key")
				if sec.Namespace != namespace || len(sec.Data) != 1 || len(sec.Data["key"]) != 32 {
					t.Errorf("report master key Secret %s/%s data %v: want 32 bytes under key", sec.Namespace, sec.Name, sec.Data)
				}
				checkMasterKeyMount(t, objs, "recbuf-report-master-key")
				// lookup finds nothing offline: each render makes a new key
				// (helm install/upgrade keep the existing one, see
				// TestTheMasterKeyIsKeptOnUpgrade).
				again := get[corev1.Secret](t, mustTemplate(t), "Secret", "recbuf-report-master-key")
				if string(again.Data["key"]) == string(sec.Data["key"]) {
					t.Errorf("two renders made the same master key %x, want random ones", sec.Data["key"])
				}
			},
		},
		{
			name: "reportMasterKey.existingSecret is mounted instead, and the chart makes none",
			set:  []string{"reportMasterKey.existingSecret=platform-recbuf-key"},
			check: func(t *testing.T, objs objects) {
				for _, obj := range objs {
					if obj.GetKind() == "Secret" && obj.GetName() != "recbuf-webhook-cert" {
						t.Errorf("got Secret %s, want none but the webhook's", obj.GetName())
					}
				}
				checkMasterKeyMount(t, objs, "platform-recbuf-key")
			},
		},
		{
			name: "image values retag the manager and the buffer processes",
			set: []string{"image.repository=registry.example/recbuf/manager", "image.tag=v1.2.3", "image.pullPolicy=Always",
				"bufferImage.repository=registry.example/recbuf/sidecar", "bufferImage.pullPolicy=Never"},
			check: func(t *testing.T, objs objects) {
				_, c := manager(t, objs, "recbuf-manager")
				if got, want := c.Image, "registry.example/recbuf/manager:v1.2.3"; got != want {
					t.Errorf("manager image: got %q, want %q", got, want)
				}
				if got, want := c.ImagePullPolicy, corev1.PullAlways; got != want {
					t.Errorf("manager imagePullPolicy: got %q, want %q", got, want)
				}
				wantArgs(t, c, "--buffer-image=registry.example/recbuf/sidecar:dev", "--buffer-image-pull-policy=Never")
			},
		},
		{
			name: "the deprecated sidecarImage still sets the buffer image, over bufferImage",
			set:  []string{"sidecarImage.repository=old.example/recbuf/sidecar", "sidecarImage.tag=v0.1.0"},
			check: func(t *testing.T, objs objects) {
				_, c := manager(t, objs, "recbuf-manager")
				wantArgs(t, c, "--buffer-image=old.example/recbuf/sidecar:v0.1.0", "--buffer-image-pull-policy=IfNotPresent")
			},
		},
		{
			name: "image pull secrets are taken as a pod spec takes them, and as bare names still",
			set:  []string{"imagePullSecrets[0].name=regcred"},
			check: func(t *testing.T, objs objects) {
				d, _ := manager(t, objs, "recbuf-manager")
				if got, want := d.Spec.Template.Spec.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "regcred"}}; !cmp.Equal(got, want) {
					t.Errorf("imagePullSecrets: got %v, want %v", got, want)
				}
				old, err := template(t, "imagePullSecrets={regcred}")
				if err != nil {
					t.Fatalf("a bare name (deprecated): %v", err)
				}
				d, _ = manager(t, old, "recbuf-manager")
				if got, want := d.Spec.Template.Spec.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "regcred"}}; !cmp.Equal(got, want) {
					t.Errorf("imagePullSecrets from a bare name: got %v, want %v", got, want)
				}
			},
		},
		{
			name: "manager settings become its flags, extraArgs last",
			set: []string{"leaderElection.enabled=false", "reports.interval=2s", "reports.staleAfter=1m", "reports.maxClockSkew=20s", "reports.subjectPrefix=stats.recbuf",
				"metrics.port=9443", "healthProbePort=9440", "extraArgs={--zap-log-level=debug}"},
			check: func(t *testing.T, objs objects) {
				_, c := manager(t, objs, "recbuf-manager")
				wantArgs(t, c, "--leader-elect=false", "--report-interval=2s", "--report-stale-after=1m", "--report-max-clock-skew=20s",
					"--report-subject-prefix=stats.recbuf", "--metrics-bind-address=:9443", "--health-probe-bind-address=:9440")
				if got, want := c.Args[len(c.Args)-1], "--zap-log-level=debug"; got != want {
					t.Errorf("last manager arg: got %q, want %q", got, want)
				}
				checkProbes(t, c, 9440)
			},
		},
		{
			name: "bufferMemoryCeiling becomes the manager's --buffer-memory-ceiling",
			set:  []string{"bufferMemoryCeiling=2Gi"},
			check: func(t *testing.T, objs objects) {
				_, c := manager(t, objs, "recbuf-manager")
				wantArgs(t, c, "--buffer-memory-ceiling=2Gi")
			},
		},
		{
			name: "network policies are off by default, and let the namespace monitoring reach the metrics port once on",
			check: func(t *testing.T, objs objects) {
				_, c := manager(t, objs, "recbuf-manager")
				wantArgs(t, c, "--network-policies=false", "--metrics-from-namespace-selector=kubernetes.io/metadata.name=monitoring")
			},
		},
		{
			name: "networkPolicy values become the manager's flags, the namespace labels in key order",
			set: []string{"networkPolicy.enabled=true", "networkPolicy.metricsNamespaceSelector.team=obs",
				`networkPolicy.metricsNamespaceSelector.kubernetes\.io/metadata\.name=prometheus`},
			check: func(t *testing.T, objs objects) {
				_, c := manager(t, objs, "recbuf-manager")
				wantArgs(t, c, "--network-policies=true", "--metrics-from-namespace-selector=kubernetes.io/metadata.name=prometheus,team=obs")
			},
		},
		{
			name: "an empty metricsNamespaceSelector lets every namespace reach the metrics port",
			set:  []string{"networkPolicy.enabled=true", "networkPolicy.metricsNamespaceSelector=null"},
			check: func(t *testing.T, objs objects) {
				_, c := manager(t, objs, "recbuf-manager")
				wantArgs(t, c, "--network-policies=true", "--metrics-from-namespace-selector=")
			},
		},
		{
			name: "serviceMonitor.enabled renders a ServiceMonitor that selects the metrics Service",
			set:  []string{"metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prometheus"},
			check: func(t *testing.T, objs objects) {
				sm, sel := checkServiceMonitor(t, objs, "recbuf-manager", "https")
				svc := get[corev1.Service](t, objs, "Service", "recbuf-manager-metrics")
				if !selects(sel, svc.Labels) {
					t.Errorf("ServiceMonitor selector %v does not select the metrics Service %v", sel, svc.Labels)
				}
				// recbuf_record_ready_status carries each Record's namespace.
				eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
				if honor, _ := eps[0].(map[string]any)["honorLabels"].(bool); !honor {
					t.Errorf("ServiceMonitor endpoint %v: want honorLabels: true", eps[0])
				}
			},
		},
		{
			name: "by default the ServiceMonitor scrapes over HTTPS with Prometheus's token, not verifying the self-signed certificate",
			set:  []string{"metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prometheus"},
			check: func(t *testing.T, objs objects) {
				sm, _ := checkServiceMonitor(t, objs, "recbuf-manager", "https")
				ep, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
				want := map[string]any{"port": "https", "path": "/metrics", "interval": "30s", "honorLabels": true, "scheme": "https",
					"bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token", "tlsConfig": map[string]any{"insecureSkipVerify": true}}
				if diff := cmp.Diff(want, ep[0]); diff != "" {
					t.Errorf("ServiceMonitor endpoint (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "metrics.certSecret is mounted as the manager's --metrics-cert-path and verified by the ServiceMonitor",
			set:  []string{"metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prometheus", "metrics.certSecret=manager-metrics-tls"},
			check: func(t *testing.T, objs objects) {
				d, c := manager(t, objs, "recbuf-manager")
				wantArgs(t, c, "--metrics-secure=true", "--metrics-cert-path=/etc/recbuf/metrics-certs")
				wantMount := corev1.VolumeMount{Name: "metrics-certs", MountPath: "/etc/recbuf/metrics-certs", ReadOnly: true}
				if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return cmp.Equal(m, wantMount) }) {
					t.Errorf("manager volumeMounts %+v lack %+v", c.VolumeMounts, wantMount)
				}
				wantSource := &corev1.SecretVolumeSource{SecretName: "manager-metrics-tls", DefaultMode: ptr(int32(0o440)),
					Items: []corev1.KeyToPath{{Key: "tls.crt", Path: "tls.crt"}, {Key: "tls.key", Path: "tls.key"}}}
				if !slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "metrics-certs" && cmp.Equal(v.Secret, wantSource) }) {
					t.Errorf("manager volumes %+v: want metrics-certs of %+v", d.Spec.Template.Spec.Volumes, wantSource)
				}
				sm, _ := checkServiceMonitor(t, objs, "recbuf-manager", "https")
				tlsConfig, _, _ := unstructured.NestedMap(sm.Object["spec"].(map[string]any)["endpoints"].([]any)[0].(map[string]any), "tlsConfig")
				want := map[string]any{"serverName": "recbuf-manager-metrics.recbuf-system.svc",
					"ca": map[string]any{"secret": map[string]any{"name": "manager-metrics-tls", "key": "ca.crt"}}}
				if diff := cmp.Diff(want, tlsConfig); diff != "" {
					t.Errorf("ServiceMonitor tlsConfig (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "metrics.secure=false serves plain HTTP: no metrics-auth role, an http port, a ServiceMonitor without token or TLS",
			set:  []string{"metrics.secure=false", "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prometheus"},
			check: func(t *testing.T, objs objects) {
				_, c := manager(t, objs, "recbuf-manager")
				wantArgs(t, c, "--metrics-bind-address=:8443", "--metrics-secure=false")
				for _, name := range []string{"ClusterRole/recbuf-metrics-auth", "ClusterRoleBinding/recbuf-metrics-auth"} {
					if slices.Contains(objs.names(), name) {
						t.Errorf("got %s, want no TokenReview or SubjectAccessReview rights without secure metrics", name)
					}
				}
				svc := get[corev1.Service](t, objs, "Service", "recbuf-manager-metrics")
				if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "http" {
					t.Errorf("metrics Service ports %+v: want one named http", svc.Spec.Ports)
				}
				sm, _ := checkServiceMonitor(t, objs, "recbuf-manager", "http")
				ep := sm.Object["spec"].(map[string]any)["endpoints"].([]any)[0].(map[string]any)
				if ep["scheme"] != "http" || ep["bearerTokenFile"] != nil || ep["tlsConfig"] != nil {
					t.Errorf("ServiceMonitor endpoint %v: want scheme http, no token, no tlsConfig", ep)
				}
			},
		},
		{
			name: "metrics.reader.serviceAccount is bound to the metrics-reader ClusterRole, in the release namespace by default",
			set:  []string{"metrics.reader.serviceAccount.name=prometheus"},
			check: func(t *testing.T, objs objects) {
				crb := get[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding", "recbuf-metrics-reader")
				if crb.RoleRef.Name != "recbuf-metrics-reader" ||
					!cmp.Equal(crb.Subjects, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: namespace}}) {
					t.Errorf("ClusterRoleBinding recbuf-metrics-reader: got roleRef %v, subjects %+v", crb.RoleRef, crb.Subjects)
				}
				other := mustTemplate(t, "metrics.reader.serviceAccount.name=prometheus-k8s", "metrics.reader.serviceAccount.namespace=monitoring")
				crb = get[rbacv1.ClusterRoleBinding](t, other, "ClusterRoleBinding", "recbuf-metrics-reader")
				if !cmp.Equal(crb.Subjects, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus-k8s", Namespace: "monitoring"}}) {
					t.Errorf("ClusterRoleBinding recbuf-metrics-reader subjects %+v: want monitoring/prometheus-k8s", crb.Subjects)
				}
			},
		},
		{
			name: "bufferServiceMonitor.enabled renders a ServiceMonitor that selects every Record's Service in every namespace",
			set:  []string{"metrics.bufferServiceMonitor.enabled=true", "metrics.bufferServiceMonitor.labels.release=prometheus"},
			check: func(t *testing.T, objs objects) {
				sm, sel := checkServiceMonitor(t, objs, "recbuf-buffers", "metrics")
				if objs.find("ServiceMonitor", "recbuf-manager") != nil {
					t.Errorf("got the manager's ServiceMonitor too, want only the buffers'")
				}
				// The labels the manager puts on a Record's Service.
				recordService := map[string]string{
					controllers.LabelName: controllers.NameValue, controllers.LabelInstance: "telemetry",
					controllers.LabelManagedBy: controllers.ManagedByValue,
				}
				if !selects(sel, recordService) {
					t.Errorf("ServiceMonitor selector %v does not select a Record's Service %v", sel, recordService)
				}
				manager := get[corev1.Service](t, objs, "Service", "recbuf-manager-metrics")
				if selects(sel, manager.Labels) {
					t.Errorf("ServiceMonitor selector %v selects the manager's metrics Service too", sel)
				}
				if anyNamespace, _, _ := unstructured.NestedBool(sm.Object, "spec", "namespaceSelector", "any"); !anyNamespace {
					t.Errorf("ServiceMonitor namespaceSelector: want any: true, got %v", sm.Object["spec"])
				}
			},
		},
		{
			name: "an existing ServiceAccount is used and bound when serviceAccount.create is false",
			set:  []string{"serviceAccount.create=false", "serviceAccount.name=platform-recbuf"},
			check: func(t *testing.T, objs objects) {
				if objs.find("ServiceAccount", "platform-recbuf") != nil || objs.find("ServiceAccount", "recbuf-manager") != nil {
					t.Errorf("got a ServiceAccount among %v, want none", objs.names())
				}
				d, _ := manager(t, objs, "recbuf-manager")
				if got, want := d.Spec.Template.Spec.ServiceAccountName, "platform-recbuf"; got != want {
					t.Errorf("serviceAccountName: got %q, want %q", got, want)
				}
				crb := get[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding", "recbuf-manager")
				if got := crb.Subjects[0].Name; got != "platform-recbuf" {
					t.Errorf("ClusterRoleBinding subject: got %q, want %q", got, "platform-recbuf")
				}
			},
		},
		{
			name: "the aggregated Record roles can be left out and the name prefix overridden",
			set:  []string{"rbac.aggregateClusterRoles=false", "fullnameOverride=rb", "sidecarInjection.enabled=false"},
			check: func(t *testing.T, objs objects) {
				want := []string{
					"ClusterRole/rb-manager", "ClusterRole/rb-metrics-auth", "ClusterRole/rb-metrics-reader",
					"ClusterRole/rb-record-consumer", "ClusterRole/rb-record-taker",
					"ClusterRoleBinding/rb-manager", "ClusterRoleBinding/rb-metrics-auth", "Deployment/rb-manager", "Role/rb-leader-election",
					"RoleBinding/rb-leader-election", "Secret/rb-report-master-key", "Service/rb-manager-metrics", "ServiceAccount/rb-manager",
					"ValidatingAdmissionPolicy/rb-record-subjects", "ValidatingAdmissionPolicyBinding/rb-record-subjects",
				}
				if diff := cmp.Diff(want, objs.names()); diff != "" {
					t.Errorf("rendered objects (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "the consumer roles grant reading and taking a Record's values, and nothing else",
			check: func(t *testing.T, objs objects) {
				for name, want := range map[string]rbacv1.PolicyRule{
					"recbuf-record-consumer": {APIGroups: []string{"recbuf.dev"}, Resources: []string{"records/consume"}, Verbs: []string{"get"}},
					"recbuf-record-taker":    {APIGroups: []string{"recbuf.dev"}, Resources: []string{"records/take"}, Verbs: []string{"create"}},
				} {
					cr := get[rbacv1.ClusterRole](t, objs, "ClusterRole", name)
					if diff := cmp.Diff([]rbacv1.PolicyRule{want}, cr.Rules); diff != "" {
						t.Errorf("%s rules (-want +got):\n%s", name, diff)
					}
					if cr.AggregationRule != nil || cr.Labels["rbac.authorization.k8s.io/aggregate-to-view"] != "" {
						t.Errorf("%s aggregates: %v", name, cr.Labels)
					}
				}
			},
		},
		{
			name: "scheduling values reach the manager pods",
			set: []string{"nodeSelector.kubernetes\\.io/os=linux", "tolerations[0].key=edge", "tolerations[0].operator=Exists",
				"priorityClassName=system-cluster-critical", "podAnnotations.team=iot", "replicaCount=2"},
			check: func(t *testing.T, objs objects) {
				d, _ := manager(t, objs, "recbuf-manager")
				spec := d.Spec.Template.Spec
				if got := spec.NodeSelector["kubernetes.io/os"]; got != "linux" {
					t.Errorf("nodeSelector: got %v", spec.NodeSelector)
				}
				if len(spec.Tolerations) != 1 || spec.Tolerations[0].Key != "edge" {
					t.Errorf("tolerations: got %+v", spec.Tolerations)
				}
				if spec.PriorityClassName != "system-cluster-critical" || d.Spec.Template.Annotations["team"] != "iot" {
					t.Errorf("priorityClassName %q, annotations %v", spec.PriorityClassName, d.Spec.Template.Annotations)
				}
				if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
					t.Errorf("replicas: got %v, want 2", d.Spec.Replicas)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, mustTemplate(t, tt.set...))
		})
	}
}

// checkMasterKeyMount checks that the manager mounts the master key of
// Secret name read-only, readable by its group only, and is told the file.
func checkMasterKeyMount(t *testing.T, objs objects, name string) {
	t.Helper()
	d, c := manager(t, objs, "recbuf-manager")
	wantArgs(t, c, "--report-master-key-file=/etc/recbuf/report-master-key/key")
	wantMount := corev1.VolumeMount{Name: "report-master-key", MountPath: "/etc/recbuf/report-master-key", ReadOnly: true}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return cmp.Equal(m, wantMount) }) {
		t.Errorf("manager volumeMounts %+v lack %+v", c.VolumeMounts, wantMount)
	}
	var vol *corev1.Volume
	for i := range d.Spec.Template.Spec.Volumes {
		if d.Spec.Template.Spec.Volumes[i].Name == "report-master-key" {
			vol = &d.Spec.Template.Spec.Volumes[i]
		}
	}
	wantSource := &corev1.SecretVolumeSource{SecretName: name, Items: []corev1.KeyToPath{{Key: "key", Path: "key"}}, DefaultMode: ptr(int32(0o440))}
	if vol == nil || !cmp.Equal(vol.Secret, wantSource) {
		t.Errorf("manager volume report-master-key %+v: want %+v", vol, wantSource)
	}
	if fsGroup := d.Spec.Template.Spec.SecurityContext.FSGroup; fsGroup == nil || *fsGroup != 65532 {
		t.Errorf("manager fsGroup %v: want 65532, the manager's group, which reads the 0440 key", fsGroup)
	}
}

// TestTheMasterKeyIsKeptOnUpgrade: helm install/upgrade keep the master key
// of an existing Secret (lookup), so upgrades change no Record's report key.
// lookup needs a cluster, which `helm template` has not (it always finds
// nothing): this renders a copy of the chart whose lookup call is replaced
// by what it returns for an existing Secret, and for a Secret without the
// key, and checks the key kept or made.
func TestTheMasterKeyIsKeptOnUpgrade(t *testing.T) {
	t.Parallel()
	const call = `lookup "v1" "Secret" .Release.Namespace $name`
	raw, err := os.ReadFile(filepath.Join(chartDir, "templates", "report-master-key.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), call) {
		t.Fatalf("templates/report-master-key.yaml does not call %s", call)
	}
	existing := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // bytes 0..31
	for _, tt := range []struct {
		name, found string
		kept        bool
	}{
		{"an existing Secret's key is kept", `(dict "data" (dict "key" "` + existing + `"))`, true},
		{"a Secret without the key gets a new one", `(dict "data" (dict "other" "eA=="))`, false},
		{"no Secret (install) gets a new one", `(dict)`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "recbuf")
			if err := os.CopyFS(dir, os.DirFS(chartDir)); err != nil {
				t.Fatal(err)
			}
			tpl := filepath.Join(dir, "templates", "report-master-key.yaml")
			if err := os.WriteFile(tpl, []byte(strings.Replace(string(raw), call, tt.found, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := runHelm(t, "template", release, dir, "--namespace", namespace, "--kube-version", kubeVersion)
			if err != nil {
				t.Fatalf("helm template: %v", err)
			}
			sec := get[corev1.Secret](t, parseObjects(t, out), "Secret", "recbuf-report-master-key")
			key := sec.Data["key"]
			if kept := len(key) == 32 && key[0] == 0 && key[31] == 31; kept != tt.kept || len(key) != 32 {
				t.Errorf("got key %x, want kept %v (32 bytes)", key, tt.kept)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// natsConfig parses the in-chart NATS server's nats.conf as nats-server
// itself does.
func natsConfig(t *testing.T, objs objects) *server.Options {
	t.Helper()
	cm := get[corev1.ConfigMap](t, objs, "ConfigMap", "recbuf-nats")
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(cm.Data["nats.conf"]), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the chart's nats.conf: %v\n%s", err, cm.Data["nats.conf"])
	}
	return opts
}

// checkRestricted checks the restricted Pod Security Standard's settings.
func checkRestricted(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and the RuntimeDefault seccomp profile", psc)
	}
	for _, c := range spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) ||
			sc.RunAsUser == nil || *sc.RunAsUser == 0 {
			t.Errorf("container %s securityContext %+v: want no privilege escalation, a read-only root, all capabilities dropped and a non-root user", c.Name, sc)
		}
	}
}

// checkProbes checks /healthz and /readyz on the container port named probes.
func checkProbes(t *testing.T, c corev1.Container, port int32) {
	t.Helper()
	var probes int32
	for _, p := range c.Ports {
		if p.Name == "probes" {
			probes = p.ContainerPort
		}
	}
	if probes != port {
		t.Errorf("container port probes: got %d, want %d", probes, port)
	}
	for _, p := range []struct {
		probe *corev1.Probe
		path  string
	}{{c.LivenessProbe, "/healthz"}, {c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.StrVal != "probes" {
			t.Errorf("probe %+v: want GET %s on port probes", p.probe, p.path)
		}
	}
}

func TestTemplateRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		set     []string
		wantErr string
	}{
		{"an unknown top-level key is rejected", []string{"replicas=2"}, "additional properties 'replicas' not allowed"},
		{"an unknown nested key is rejected", []string{"nats.cluster=true"}, "additional properties 'cluster' not allowed"},
		{"MQTT without JetStream is refused", []string{"nats.enabled=true", "nats.jetstream.enabled=false"}, "nats.mqtt.enabled needs nats.jetstream.enabled"},
		{"a JetStream limit that is no quantity is rejected", []string{"nats.jetstream.maxFileStore=big"}, "/nats/jetstream/maxFileStore"},
		{"a misspelt image key is rejected", []string{"image.pullpolicy=Always"}, "additional properties 'pullpolicy' not allowed"},
		{"an unknown resource is rejected", []string{"resources.requests.gpu=1"}, "additional properties 'gpu' not allowed"},
		{"a replica count that is not a number is rejected", []string{"replicaCount=two"}, "/replicaCount"},
		{"an unknown pull policy is rejected", []string{"image.pullPolicy=Sometimes"}, "/image/pullPolicy"},
		{"a report interval without a unit is rejected", []string{"reports.interval=5"}, "/reports/interval"},
		{"an unknown report setting is rejected", []string{"reports.every=5s"}, "additional properties 'every' not allowed"},
		{"a report subject prefix with a wildcard is rejected", []string{"reports.subjectPrefix=recbuf.>"}, "/reports/subjectPrefix"},
		{"a NATS URL without a scheme is rejected", []string{"natsURL=nats.example:4222"}, "/natsURL"},
		{"a memory ceiling that is no quantity is rejected", []string{"bufferMemoryCeiling=lots"}, "/bufferMemoryCeiling"},
		{"a credentials Secret name that is no DNS name is rejected", []string{"natsCredentialsSecret=Bad_Name"}, "/natsCredentialsSecret"},
		{"a master key Secret name that is no DNS name is rejected", []string{"reportMasterKey.existingSecret=Bad_Name"}, "/reportMasterKey/existingSecret"},
		{"a port out of range is rejected", []string{"metrics.port=70000"}, "/metrics/port"},
		{"a misspelt networkPolicy key is rejected", []string{"networkPolicy.enable=true"}, "additional properties 'enable' not allowed"},
		{"a networkPolicy.enabled that is no boolean is rejected", []string{"networkPolicy.enabled=yes"}, "/networkPolicy/enabled"},
		{"extraArgs that are not flags are rejected", []string{"extraArgs={debug}"}, "/extraArgs/0"},
		{"a metrics certificate for plain HTTP is refused", []string{"metrics.secure=false", "metrics.certSecret=tls"}, "metrics.certSecret needs metrics.secure"},
		{"a metrics reader that is no ServiceAccount name is refused", []string{"metrics.reader.serviceAccount.name=Prometheus"}, "/metrics/reader/serviceAccount/name"},
		{"a ServiceMonitor without the metrics Service is refused", []string{"metrics.serviceMonitor.enabled=true", "metrics.service.enabled=false"}, "metrics.serviceMonitor.enabled needs metrics.service.enabled"},
		{"an unknown validation action is refused", []string{"subjectPolicy.validationActions={Block}"}, "/subjectPolicy/validationActions/0"},
		{"a binding without validation actions is refused", []string{"subjectPolicy.validationActions={}"}, "/subjectPolicy/validationActions"},
		{"a binding with null validation actions is refused", []string{"subjectPolicy.validationActions=null"}, "subjectPolicy.validationActions must list at least one"},
		{"an existing ServiceAccount needs a name", []string{"serviceAccount.create=false"}, "serviceAccount.name is required"},
		{"a client CA Secret name that is no DNS name is rejected", []string{"sidecarInjection.clientCA.existingSecret=Bad_Name"}, "/sidecarInjection/clientCA/existingSecret"},
		{"client names without the client CA are refused", []string{"sidecarInjection.clientCA.names={kube-apiserver}"}, "sidecarInjection.clientCA.names needs sidecarInjection.clientCA.existingSecret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := template(t, tt.set...)
			if err == nil {
				t.Fatalf("helm template %v succeeded, want an error containing %q", tt.set, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("helm template %v: got error %q, want it to contain %q", tt.set, err, tt.wantErr)
			}
		})
	}
}

// TestSubjectPolicy checks the ValidatingAdmissionPolicy on the Records'
// subjects: bound with Deny, its CEL unrolled over the tokens of the
// configured report prefix, and gone when disabled. test/policy runs it on a
// real API server.
func TestSubjectPolicy(t *testing.T) {
	t.Parallel()
	policy := func(t *testing.T, objs objects) (reserved, message string) {
		t.Helper()
		vap := objs.find("ValidatingAdmissionPolicy", "recbuf-record-subjects")
		if vap == nil {
			t.Fatalf("no ValidatingAdmissionPolicy recbuf-record-subjects among %v", objs.names())
		}
		if got, _, _ := unstructured.NestedString(vap.Object, "apiVersion"); got != "admissionregistration.k8s.io/v1" {
			t.Errorf("policy apiVersion %q, want admissionregistration.k8s.io/v1", got)
		}
		if got, _, _ := unstructured.NestedString(vap.Object, "spec", "failurePolicy"); got != "Fail" {
			t.Errorf("policy failurePolicy %q, want Fail", got)
		}
		vars, _, _ := unstructured.NestedSlice(vap.Object, "spec", "variables")
		for _, v := range vars {
			if m := v.(map[string]any); m["name"] == "reserved" {
				reserved, _ = m["expression"].(string)
			}
		}
		validations, _, _ := unstructured.NestedSlice(vap.Object, "spec", "validations")
		if len(validations) != 4 {
			t.Fatalf("policy validations %v: want the reserved report subjects, the reserved NATS system subjects, the queue group and the namespace's allowed subjects", validations)
		}
		message, _ = validations[0].(map[string]any)["messageExpression"].(string)
		b := objs.find("ValidatingAdmissionPolicyBinding", "recbuf-record-subjects")
		if b == nil {
			t.Fatal("no ValidatingAdmissionPolicyBinding recbuf-record-subjects")
		}
		if got, _, _ := unstructured.NestedString(b.Object, "spec", "policyName"); got != vap.GetName() {
			t.Errorf("binding policyName %q, want %q", got, vap.GetName())
		}
		return reserved, message
	}
	t.Run("the default prefix recbuf.stats", func(t *testing.T) {
		t.Parallel()
		objs := mustTemplate(t)
		reserved, message := policy(t, objs)
		for _, want := range []string{"size(variables.tokens) == 5", "variables.tokens[0] == 'recbuf'", "variables.tokens[1] == 'stats'"} {
			if !strings.Contains(reserved, want) {
				t.Errorf("reserved expression %q: want it to contain %q", reserved, want)
			}
		}
		if strings.Contains(reserved, "variables.tokens[2] ==") {
			t.Errorf("reserved expression %q: want terms for the prefix's two tokens only", reserved)
		}
		if want := "overlaps the reserved report subjects recbuf.stats.>"; !strings.Contains(message, want) {
			t.Errorf("message %q: want it to contain %q", message, want)
		}
		b := objs.find("ValidatingAdmissionPolicyBinding", "recbuf-record-subjects")
		if got, _, _ := unstructured.NestedStringSlice(b.Object, "spec", "validationActions"); !slices.Equal(got, []string{"Deny"}) {
			t.Errorf("binding validationActions %v, want [Deny]", got)
		}
	})
	t.Run("a prefix of three tokens", func(t *testing.T) {
		t.Parallel()
		objs := mustTemplate(t, "reports.subjectPrefix=acme.recbuf-x.reports", "subjectPolicy.validationActions={Warn,Audit}")
		reserved, message := policy(t, objs)
		for _, want := range []string{"size(variables.tokens) == 6", "variables.tokens[0] == 'acme'",
			"variables.tokens[1] == 'recbuf-x'", "variables.tokens[2] == 'reports'"} {
			if !strings.Contains(reserved, want) {
				t.Errorf("reserved expression %q: want it to contain %q", reserved, want)
			}
		}
		if strings.Contains(reserved, "'recbuf'") || strings.Contains(reserved, "'stats'") {
			t.Errorf("reserved expression %q: want no term of the default prefix", reserved)
		}
		if want := "overlaps the reserved report subjects acme.recbuf-x.reports.>"; !strings.Contains(message, want) {
			t.Errorf("message %q: want it to contain %q", message, want)
		}
		b := objs.find("ValidatingAdmissionPolicyBinding", "recbuf-record-subjects")
		if got, _, _ := unstructured.NestedStringSlice(b.Object, "spec", "validationActions"); !slices.Equal(got, []string{"Warn", "Audit"}) {
			t.Errorf("binding validationActions %v, want [Warn Audit]", got)
		}
	})
	t.Run("disabled renders nothing", func(t *testing.T) {
		t.Parallel()
		for _, obj := range mustTemplate(t, "subjectPolicy.enabled=false") {
			if strings.HasPrefix(obj.GetKind(), "ValidatingAdmissionPolicy") {
				t.Errorf("subjectPolicy.enabled=false rendered %s/%s", obj.GetKind(), obj.GetName())
			}
		}
	})
}

// TestClusterRoleMatchesGenerated keeps the chart least-privileged and
// complete: the ClusterRole must carry exactly the rules controller-gen
// generates from the controllers' RBAC markers.
func TestClusterRoleMatchesGenerated(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(rootDir, "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatalf("read the generated role (run `make manifests`): %v", err)
	}
	var generated rbacv1.ClusterRole
	if err := sigsyaml.Unmarshal(raw, &generated); err != nil {
		t.Fatalf("parse config/rbac/role.yaml: %v", err)
	}
	rendered := get[rbacv1.ClusterRole](t, mustTemplate(t), "ClusterRole", "recbuf-manager")
	if diff := cmp.Diff(generated.Rules, rendered.Rules); diff != "" {
		t.Errorf("chart ClusterRole rules differ from config/rbac/role.yaml (run `make manifests`) (-generated +chart):\n%s", diff)
	}
}

// TestTheMultiTenantValuesRender renders values-multitenant.yaml, which
// docs/security.md#multi-tenant-install installs with, against the schema,
// and checks that each setting it is there for reaches the manager.
func TestTheMultiTenantValuesRender(t *testing.T) {
	t.Parallel()
	out, err := runHelm(t, "template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion,
		"-f", filepath.Join(chartDir, "values-multitenant.yaml"))
	if err != nil {
		t.Fatalf("helm template -f values-multitenant.yaml: %v", err)
	}
	objs := parseObjects(t, out)
	_, c := manager(t, objs, "recbuf-manager")
	wantArgs(t, c, "--nats-url=tls://nats.nats.svc:4222", "--nats-credentials-dir=/etc/recbuf/nats",
		"--allowed-nats-servers=tls://nats.nats.svc:4222", "--metrics-secure=true",
		"--network-policies=true", "--metrics-from-namespace-selector=kubernetes.io/metadata.name=monitoring")
	if a, ok := argWithPrefix(c, "--allow-plaintext-nats-credentials"); ok {
		t.Errorf("manager got %q, want no plaintext credentials", a)
	}
	if objs.find("Secret", "recbuf-report-master-key") != nil {
		t.Errorf("got a master key Secret made by the chart, want the existing one only")
	}
	checkMasterKeyMount(t, objs, "recbuf-report-master-key")
	for _, name := range []string{"ValidatingAdmissionPolicy/recbuf-record-subjects", "ValidatingAdmissionPolicyBinding/recbuf-record-subjects",
		"ClusterRoleBinding/recbuf-metrics-auth", "ClusterRole/recbuf-record-editor"} {
		if !slices.Contains(objs.names(), name) {
			t.Errorf("rendered objects %v lack %s", objs.names(), name)
		}
	}
	crb := get[rbacv1.ClusterRoleBinding](t, objs, "ClusterRoleBinding", "recbuf-metrics-reader")
	if !cmp.Equal(crb.Subjects, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus-k8s", Namespace: "monitoring"}}) {
		t.Errorf("metrics reader subjects %+v: want monitoring/prometheus-k8s", crb.Subjects)
	}
}

// TestTheHAValuesRender renders values-ha.yaml: two managers with leader
// election, apart where the nodes allow, and a disruption budget that
// selects exactly the manager's pods; without it, one manager and no
// budget; and more than one manager without leader election is refused.
func TestTheHAValuesRender(t *testing.T) {
	t.Parallel()
	out, err := runHelm(t, "template", release, chartDir, "--namespace", namespace, "--kube-version", kubeVersion,
		"-f", filepath.Join(chartDir, "values-ha.yaml"))
	if err != nil {
		t.Fatalf("helm template -f values-ha.yaml: %v", err)
	}
	objs := parseObjects(t, out)
	d, c := manager(t, objs, "recbuf-manager")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("manager replicas: got %v, want 2", d.Spec.Replicas)
	}
	wantArgs(t, c, "--leader-elect=true")
	aa := d.Spec.Template.Spec.Affinity
	if aa == nil || aa.PodAntiAffinity == nil || len(aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Fatalf("manager affinity %+v: want one preferred pod anti-affinity term", aa)
	}
	term := aa.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
	if term.TopologyKey != corev1.LabelHostname || !selects(term.LabelSelector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("anti-affinity term %+v: want one on %s that selects the manager's pods", term, corev1.LabelHostname)
	}
	pdb := get[policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget", "recbuf-manager")
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("budget minAvailable %v: want 1", pdb.Spec.MinAvailable)
	}
	if !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
		t.Errorf("budget selector %v does not select the manager's pods %v", pdb.Spec.Selector, d.Spec.Template.Labels)
	}
	for _, name := range objs.names() {
		if strings.HasPrefix(name, "Deployment/") && name != "Deployment/recbuf-manager" {
			other := get[appsv1.Deployment](t, objs, "Deployment", strings.TrimPrefix(name, "Deployment/"))
			if selects(pdb.Spec.Selector.MatchLabels, other.Spec.Template.Labels) {
				t.Errorf("budget selector %v also selects the pods of %s", pdb.Spec.Selector, name)
			}
		}
	}

	if objs := mustTemplate(t); objs.find("PodDisruptionBudget", "recbuf-manager") != nil {
		t.Errorf("a budget for the default single manager, want none: it would block every drain")
	}
	if _, err := template(t, "replicaCount=2", "leaderElection.enabled=false"); err == nil || !strings.Contains(err.Error(), "needs leaderElection.enabled") {
		t.Errorf("two managers without leader election: got error %v, want one naming leaderElection.enabled", err)
	}
}

// TestMetricsRolesMatchConfig keeps the chart's metrics ClusterRoles and
// config/rbac's (which the manager's envtest runs with) the same.
func TestMetricsRolesMatchConfig(t *testing.T) {
	t.Parallel()
	objs := mustTemplate(t)
	for file, name := range map[string]string{"metrics_auth_role.yaml": "recbuf-metrics-auth", "metrics_reader_role.yaml": "recbuf-metrics-reader"} {
		raw, err := os.ReadFile(filepath.Join(rootDir, "config", "rbac", file))
		if err != nil {
			t.Fatal(err)
		}
		var want rbacv1.ClusterRole
		if err := sigsyaml.Unmarshal(raw, &want); err != nil {
			t.Fatalf("parse config/rbac/%s: %v", file, err)
		}
		got := get[rbacv1.ClusterRole](t, objs, "ClusterRole", name)
		if diff := cmp.Diff(want.Rules, got.Rules); diff != "" {
			t.Errorf("chart ClusterRole %s differs from config/rbac/%s (-config +chart):\n%s", name, file, diff)
		}
	}
}

// TestWebhookMatchesConfig keeps `make deploy`'s sidecar injection webhook
// (config/webhook) the chart's default one: the same webhook, Service and
// certificate RBAC.
func TestWebhookMatchesConfig(t *testing.T) {
	t.Parallel()
	chart := mustTemplate(t)
	var config objects
	for _, file := range []string{"webhook.yaml", "cert_secret.yaml", "cert_role.yaml"} {
		raw, err := os.ReadFile(filepath.Join(rootDir, "config", "webhook", file))
		if err != nil {
			t.Fatal(err)
		}
		config = append(config, parseObjects(t, string(raw))...)
	}
	const webhook = "recbuf-sidecar-injector"
	want := get[admissionregistrationv1.MutatingWebhookConfiguration](t, config, "MutatingWebhookConfiguration", webhook)
	got := get[admissionregistrationv1.MutatingWebhookConfiguration](t, chart, "MutatingWebhookConfiguration", webhook)
	if diff := cmp.Diff(want.Webhooks, got.Webhooks); diff != "" {
		t.Errorf("chart webhook differs from config/webhook (-config +chart):\n%s", diff)
	}
	// The selectors differ: the chart's pods carry its release's instance label.
	if diff := cmp.Diff(get[corev1.Service](t, config, "Service", "recbuf-webhook").Spec.Ports,
		get[corev1.Service](t, chart, "Service", "recbuf-webhook").Spec.Ports); diff != "" {
		t.Errorf("chart webhook Service differs from config/webhook (-config +chart):\n%s", diff)
	}
	get[corev1.Secret](t, config, "Secret", "recbuf-webhook-cert")
	if diff := cmp.Diff(get[rbacv1.Role](t, config, "Role", "recbuf-webhook-cert").Rules,
		get[rbacv1.Role](t, chart, "Role", "recbuf-webhook-cert").Rules); diff != "" {
		t.Errorf("chart webhook Role differs from config/webhook (-config +chart):\n%s", diff)
	}
	if diff := cmp.Diff(get[rbacv1.ClusterRole](t, config, "ClusterRole", "recbuf-webhook-cert").Rules,
		get[rbacv1.ClusterRole](t, chart, "ClusterRole", "recbuf-webhook-cert").Rules); diff != "" {
		t.Errorf("chart webhook ClusterRole differs from config/webhook (-config +chart):\n%s", diff)
	}
}

// TestCRDsMatchConfig checks that the chart ships the CRDs that
// controller-gen generated (`make chart-crds` copies them).
func TestCRDsMatchConfig(t *testing.T) {
	t.Parallel()
	generated, _ := filepath.Glob(filepath.Join(rootDir, "config", "crd", "bases", "*.yaml"))
	chart, _ := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	if len(generated) == 0 {
		t.Fatal("no CRDs in config/crd/bases: run `make manifests`")
	}
	base := func(paths []string) []string {
		var s []string
		for _, p := range paths {
			s = append(s, filepath.Base(p))
		}
		return s
	}
	if diff := cmp.Diff(base(generated), base(chart)); diff != "" {
		t.Fatalf("CRD files differ (run `make chart-crds`) (-config +chart):\n%s", diff)
	}
	for i := range generated {
		a, errA := os.ReadFile(generated[i])
		b, errB := os.ReadFile(chart[i])
		if err := errors.Join(errA, errB); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s: run `make chart-crds`", chart[i], generated[i])
		}
	}
}

// TestValuesDocumented checks that every value in values.yaml has a comment
// right above it that starts with its name.
func TestValuesDocumented(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse values.yaml: %v", err)
	}
	var walk func(path string, n *yaml.Node)
	walk = func(path string, n *yaml.Node) {
		if n.Kind == yaml.DocumentNode {
			for _, c := range n.Content {
				walk(path, c)
			}
			return
		}
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			p := strings.TrimPrefix(path+"."+key.Value, ".")
			// The comment block right above the key: the last paragraph of
			// its head comment (the file's header may precede it).
			paragraphs := strings.Split(key.HeadComment, "\n\n")
			comment := paragraphs[len(paragraphs)-1]
			if !regexp.MustCompile(`^# ` + regexp.QuoteMeta(key.Value) + `\b`).MatchString(comment) {
				t.Errorf("value %s: got comment %q, want one that starts with %q", p, comment, "# "+key.Value)
			}
			walk(p, val)
		}
	}
	walk("", &doc)
}

// TestSchemaDescribesValues checks that values.schema.json and values.yaml
// have the same keys, so that the schema neither rejects a default nor
// accepts an undocumented value.
func TestSchemaDescribesValues(t *testing.T) {
	t.Parallel()
	var values map[string]any
	raw, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sigsyaml.Unmarshal(raw, &values); err != nil {
		t.Fatalf("parse values.yaml: %v", err)
	}
	var schema map[string]any
	raw, err = os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("parse values.schema.json: %v", err)
	}
	definitions, _ := schema["definitions"].(map[string]any)
	resolve := func(s map[string]any) map[string]any {
		if ref, ok := s["$ref"].(string); ok {
			def, _ := definitions[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
			return def
		}
		return s
	}
	var walk func(path string, v map[string]any, s map[string]any)
	walk = func(path string, v map[string]any, s map[string]any) {
		s = resolve(s)
		props, ok := s["properties"].(map[string]any)
		if !ok {
			return // a map or a passthrough Kubernetes type
		}
		if s["additionalProperties"] != false {
			t.Errorf("schema of %q: got additionalProperties %v, want false", path, s["additionalProperties"])
		}
		for k, sub := range props {
			if d, _ := sub.(map[string]any)["deprecated"].(bool); d {
				// An old name, set only by users (sidecarImage).
				continue
			}
			if _, ok := v[k]; !ok {
				t.Errorf("schema property %s.%s is not in values.yaml", path, k)
			}
			if child, ok := v[k].(map[string]any); ok {
				walk(path+"."+k, child, sub.(map[string]any))
			}
		}
		for k := range v {
			if _, ok := props[k]; !ok {
				t.Errorf("value %s.%s is not in values.schema.json", path, k)
			}
		}
	}
	walk("", values, schema)
}

func TestSidecarInjectionWebhook(t *testing.T) {
	t.Parallel()
	t.Run("by default the manager serves it with a certificate of its own, and only opted-in pods are sent", func(t *testing.T) {
		objs := mustTemplate(t)
		mwc := get[admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "MutatingWebhookConfiguration", "recbuf-sidecar-injector")
		if len(mwc.Webhooks) != 1 {
			t.Fatalf("got %d webhooks, want 1", len(mwc.Webhooks))
		}
		wh := mwc.Webhooks[0]
		if got := wh.ObjectSelector.MatchLabels; got[recbufv1alpha1.LabelInject] != "true" {
			t.Errorf("objectSelector %v: want %s=true", got, recbufv1alpha1.LabelInject)
		}
		if wh.FailurePolicy == nil || *wh.FailurePolicy != admissionregistrationv1.Fail || wh.SideEffects == nil || *wh.SideEffects != admissionregistrationv1.SideEffectClassNone {
			t.Errorf("failurePolicy %v, sideEffects %v: want Fail and None", wh.FailurePolicy, wh.SideEffects)
		}
		excluded := false
		for _, e := range wh.NamespaceSelector.MatchExpressions {
			excluded = excluded || (e.Operator == metav1.LabelSelectorOpNotIn && slices.Contains(e.Values, "kube-system") && slices.Contains(e.Values, namespace))
		}
		if !excluded {
			t.Errorf("namespaceSelector %+v: want kube-system and %s excluded", wh.NamespaceSelector, namespace)
		}
		if svc := wh.ClientConfig.Service; svc == nil || svc.Name != "recbuf-webhook" || svc.Path == nil || *svc.Path != recbufwebhook.Path {
			t.Errorf("clientConfig %+v: want the Service recbuf-webhook at %s", wh.ClientConfig, recbufwebhook.Path)
		}
		if len(wh.ClientConfig.CABundle) != 0 || len(mwc.Annotations) != 0 {
			t.Errorf("caBundle %q, annotations %v: want neither, the manager writes the caBundle", wh.ClientConfig.CABundle, mwc.Annotations)
		}
		d, c := manager(t, objs, "recbuf-manager")
		wantArgs(t, c, "--sidecar-injection=true", "--webhook-port=9443", "--webhook-certs=self",
			"--webhook-cert-secret="+namespace+"/recbuf-webhook-cert", "--webhook-service="+namespace+"/recbuf-webhook",
			"--webhook-configuration=recbuf-sidecar-injector", "--webhook-cert-dir=/etc/recbuf/webhook-certs")
		svc := get[corev1.Service](t, objs, "Service", "recbuf-webhook")
		if !selects(svc.Spec.Selector, d.Spec.Template.Labels) || svc.Spec.Ports[0].TargetPort.StrVal != "webhook" {
			t.Errorf("webhook Service %+v does not reach the manager's webhook port", svc.Spec)
		}
		role := get[rbacv1.Role](t, objs, "Role", "recbuf-webhook-cert")
		wantRules := []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"recbuf-webhook-cert"}, Verbs: []string{"update"}},
		}
		if diff := cmp.Diff(wantRules, role.Rules); diff != "" {
			t.Errorf("webhook certificate Role (-want +got):\n%s", diff)
		}
		cr := get[rbacv1.ClusterRole](t, objs, "ClusterRole", "recbuf-webhook-cert")
		if len(cr.Rules) != 2 || !slices.Equal(cr.Rules[1].ResourceNames, []string{"recbuf-sidecar-injector"}) || !slices.Equal(cr.Rules[1].Verbs, []string{"update"}) {
			t.Errorf("webhook certificate ClusterRole rules %+v: want update on recbuf-sidecar-injector only", cr.Rules)
		}
		checkRestricted(t, d.Spec.Template.Spec)
	})
	t.Run("with cert-manager a Certificate replaces the manager's own CA, and cert-manager injects the caBundle", func(t *testing.T) {
		objs := mustTemplate(t, "sidecarInjection.certManager.enabled=true")
		for _, name := range []string{"Role/recbuf-webhook-cert", "ClusterRole/recbuf-webhook-cert", "Secret/recbuf-webhook-cert"} {
			kind, n, _ := strings.Cut(name, "/")
			if objs.find(kind, n) != nil {
				t.Errorf("got %s, want none with cert-manager", name)
			}
		}
		cert := objs.find("Certificate", "recbuf-webhook")
		if cert == nil {
			t.Fatalf("no Certificate among %v", objs.names())
		}
		if got, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName"); got != "recbuf-webhook-cert" {
			t.Errorf("Certificate secretName %q, want recbuf-webhook-cert", got)
		}
		if objs.find("Issuer", "recbuf-webhook-selfsigned") == nil {
			t.Errorf("no self-signed Issuer among %v", objs.names())
		}
		mwc := get[admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "MutatingWebhookConfiguration", "recbuf-sidecar-injector")
		if got := mwc.Annotations["cert-manager.io/inject-ca-from"]; got != namespace+"/recbuf-webhook" {
			t.Errorf("inject-ca-from %q, want %s/recbuf-webhook", got, namespace)
		}
		_, c := manager(t, objs, "recbuf-manager")
		wantArgs(t, c, "--webhook-certs=external")
		if a, ok := argWithPrefix(c, "--webhook-cert-secret"); ok {
			t.Errorf("got %q, want no Secret of the manager's own", a)
		}
	})
	t.Run("by default its callers are not authenticated: no client CA is mounted or passed", func(t *testing.T) {
		d, c := manager(t, mustTemplate(t), "recbuf-manager")
		for _, flag := range []string{"--webhook-client-ca-file", "--webhook-client-names"} {
			if a, ok := argWithPrefix(c, flag); ok {
				t.Errorf("got %q, want none by default", a)
			}
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == "webhook-client-ca" {
				t.Errorf("got the volume %+v, want none by default", v)
			}
		}
	})
	t.Run("with clientCA, its Secret's ca.crt is the manager's --webhook-client-ca-file, and the names its --webhook-client-names", func(t *testing.T) {
		objs := mustTemplate(t, "sidecarInjection.clientCA.existingSecret=apiserver-webhook-client-ca", "sidecarInjection.clientCA.names={kube-apiserver,apiserver-webhook-client}")
		d, c := manager(t, objs, "recbuf-manager")
		wantArgs(t, c, "--webhook-client-ca-file=/etc/recbuf/webhook-client-ca/ca.crt", "--webhook-client-names=kube-apiserver,apiserver-webhook-client")
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || (m.Name == "webhook-client-ca" && m.MountPath == "/etc/recbuf/webhook-client-ca" && m.ReadOnly)
		}
		found := false
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == "webhook-client-ca" {
				found = v.Secret != nil && v.Secret.SecretName == "apiserver-webhook-client-ca" && len(v.Secret.Items) == 1 && v.Secret.Items[0].Key == "ca.crt" && v.Secret.Items[0].Path == "ca.crt"
			}
		}
		if !mounted || !found {
			t.Errorf("mounts %+v, volumes %+v: want the Secret apiserver-webhook-client-ca's ca.crt read-only at /etc/recbuf/webhook-client-ca", c.VolumeMounts, d.Spec.Template.Spec.Volumes)
		}
		checkRestricted(t, d.Spec.Template.Spec)
	})
	t.Run("with clientCA and no names, any certificate of the CA is accepted", func(t *testing.T) {
		_, c := manager(t, mustTemplate(t, "sidecarInjection.clientCA.existingSecret=ca"), "recbuf-manager")
		wantArgs(t, c, "--webhook-client-ca-file=/etc/recbuf/webhook-client-ca/ca.crt")
		if a, ok := argWithPrefix(c, "--webhook-client-names"); ok {
			t.Errorf("got %q, want no names", a)
		}
	})
	t.Run("turned off, nothing of it is rendered", func(t *testing.T) {
		objs := mustTemplate(t, "sidecarInjection.enabled=false")
		if objs.find("MutatingWebhookConfiguration", "recbuf-sidecar-injector") != nil {
			t.Error("got the webhook configuration, want none")
		}
		_, c := manager(t, objs, "recbuf-manager")
		if a, ok := argWithPrefix(c, "--sidecar-injection"); ok {
			t.Errorf("got %q, want the manager's default (off)", a)
		}
	})
}

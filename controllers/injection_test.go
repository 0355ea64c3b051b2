package controllers

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/sidecar"
	recbufwebhook "github.com/recbuf/recbuf/internal/webhook"
)

// This file tests the injection webhook (internal/webhook) as the API
// server calls it, with the reconciler that sets the Records up and counts
// the injected buffers in their status: both run in this suite's manager.

// testWebhookConfiguration is the chart's MutatingWebhookConfiguration
// (charts/recbuf/templates/webhook.yaml) as envtest installs it: envtest
// points it at the suite's manager and sets its caBundle.
func testWebhookConfiguration() *admissionregistrationv1.MutatingWebhookConfiguration {
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: "recbuf-sidecar-injector"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "sidecar.recbuf.dev",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
				Namespace: "recbuf-system", Name: "recbuf-webhook", Path: ptr.To(recbufwebhook.Path),
			}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
					Scope: ptr.To(admissionregistrationv1.NamespacedScope),
				},
			}},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{recbufv1alpha1.LabelInject: "true"}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
			ReinvocationPolicy:      ptr.To(admissionregistrationv1.NeverReinvocationPolicy),
		}},
	}
}

// setUpRecord creates a Record and waits for the manager's first pass,
// after which the webhook injects it.
func setUpRecord(t *testing.T, g Gomega, rec *recbufv1alpha1.Record) {
	t.Helper()
	create(t, g, rec)
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.ObservedGeneration).To(Equal(rec.Generation))
	}, 10*time.Second).Should(Succeed())
}

// appPod is an app's pod asking for the sidecars of records.
func appPod(ns string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, GenerateName: "app-",
			Labels:      map[string]string{recbufv1alpha1.LabelInject: "true", "app": "consumer"},
			Annotations: annotations,
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app"}}},
	}
}

func TestWebhookInjectsTheBufferOfEachRecordAsANativeSidecar(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	tele := newRecord(ns, "telemetry", ringSpec(64))
	state := newRecord(ns, "state", recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSingleLatest}})
	setUpRecord(t, g, tele)
	setUpRecord(t, g, state)

	pod := appPod(ns, map[string]string{recbufv1alpha1.AnnotationRecords: "telemetry,state", recbufv1alpha1.AnnotationPort: "7000"})
	create(t, g, pod)

	g.Expect(pod.Spec.Containers).To(HaveLen(1), "the app's containers are left alone")
	g.Expect(pod.Spec.InitContainers).To(HaveLen(2))
	c := pod.Spec.InitContainers[0]
	g.Expect(c.Name).To(Equal("recbuf-telemetry"))
	g.Expect(c.Image).To(Equal(testImage))
	g.Expect(c.RestartPolicy).To(Equal(ptr.To(corev1.ContainerRestartPolicyAlways)))
	g.Expect(c.Args).To(Equal([]string{
		"--record-namespace=" + ns, "--record-name=telemetry", "--record-uid=" + string(tele.UID), "--buffer-type=SpmcRing",
		"--capacity=64",
		"--nats-url=" + testConfig.NATSURL, "--nats-subject=records." + ns + ".telemetry", "--max-message-bytes=1048576",
		"--http-addr=127.0.0.1:7000", "--metrics-addr=:9090",
		"--report-settings-file=/etc/recbuf/settings/reports.json", "--report-key-file=/etc/recbuf/report-key/key",
		"--shutdown-grace=10s",
	}))
	g.Expect(c.SecurityContext).To(Equal(&corev1.SecurityContext{
		RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](bufferpod.RunAsID), RunAsGroup: ptr.To[int64](bufferpod.RunAsID),
		AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
		Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}))
	g.Expect(c.VolumeMounts).To(Equal([]corev1.VolumeMount{
		{Name: "settings-recbuf-0", MountPath: bufferpod.SettingsDir, ReadOnly: true},
		{Name: "report-key-recbuf-0", MountPath: bufferpod.ReportKeyDir, ReadOnly: true},
	}))
	g.Expect(c.Resources.Limits.Memory().IsZero()).To(BeFalse(), "the Record's resource defaults apply")
	g.Expect(c.StartupProbe).NotTo(BeNil())

	second := pod.Spec.InitContainers[1]
	g.Expect(second.Name).To(Equal("recbuf-state"))
	g.Expect(second.Args).To(ContainElements("--http-addr=127.0.0.1:7001", "--metrics-addr=:9091", "--buffer-type=SingleLatest"))

	var vols []string
	for _, v := range pod.Spec.Volumes {
		vols = append(vols, v.Name)
	}
	g.Expect(vols).To(ContainElements("settings-recbuf-0", "report-key-recbuf-0", "settings-recbuf-1", "report-key-recbuf-1"))
	g.Expect(pod.Spec.Volumes).To(ContainElement(HaveField("Secret.SecretName", reportKeySecretName(tele, testConfig))))
	g.Expect(pod.Annotations).To(HaveKeyWithValue(recbufv1alpha1.AnnotationRecordGenerations, "telemetry=1,state=1"))
}

func TestWebhookListensOnEveryInterfaceOnlyWhenAsked(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	setUpRecord(t, g, newRecord(ns, "telemetry", ringSpec(8)))
	pod := appPod(ns, map[string]string{recbufv1alpha1.AnnotationRecords: "telemetry", recbufv1alpha1.AnnotationListenAddress: "0.0.0.0"})
	create(t, g, pod)
	g.Expect(pod.Spec.InitContainers).To(HaveLen(1))
	g.Expect(pod.Spec.InitContainers[0].Args).To(ContainElement("--http-addr=0.0.0.0:8080"))
	g.Expect(pod.Spec.InitContainers[0].Args).NotTo(ContainElement(HavePrefix("--consumer-auth")), "the Record asks no token")
}

func TestWebhookLeavesPodsThatDoNotAskAlone(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	setUpRecord(t, g, newRecord(ns, "telemetry", ringSpec(8)))
	// The annotation without the label: the API server does not call the
	// webhook at all.
	pod := appPod(ns, map[string]string{recbufv1alpha1.AnnotationRecords: "telemetry"})
	delete(pod.Labels, recbufv1alpha1.LabelInject)
	create(t, g, pod)
	g.Expect(pod.Spec.InitContainers).To(BeEmpty())
	g.Expect(pod.Spec.Volumes).To(BeEmpty())
	g.Expect(pod.Annotations).NotTo(HaveKey(recbufv1alpha1.AnnotationRecordGenerations))
}

func TestWebhookRefusesBadRequestsNamingTheAnnotationAndTheRecord(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	setUpRecord(t, g, newRecord(ns, "telemetry", ringSpec(8)))
	setUpRecord(t, g, newRecord(ns, "commands", recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeMailbox}}))
	guarded := ringSpec(8)
	guarded.Consumers = &recbufv1alpha1.ConsumersSpec{Authentication: recbufv1alpha1.ConsumerAuthenticationServiceAccountToken}
	setUpRecord(t, g, newRecord(ns, "guarded", guarded))
	tests := []struct {
		name        string
		annotations map[string]string
		want        string
	}{
		{"a Record that does not exist", map[string]string{recbufv1alpha1.AnnotationRecords: "telemetry,nosuch"},
			"annotation recbuf.dev/records: Record " + ns + "/nosuch does not exist"},
		{"a Record of another namespace", map[string]string{recbufv1alpha1.AnnotationRecords: "default/telemetry"},
			`annotation recbuf.dev/records: Record "default/telemetry": only Records of the pod's own namespace`},
		{"a bad port", map[string]string{recbufv1alpha1.AnnotationRecords: "telemetry", recbufv1alpha1.AnnotationPort: "0"},
			`annotation recbuf.dev/port: "0" is not a port`},
		{"a Mailbox", map[string]string{recbufv1alpha1.AnnotationRecords: "commands"},
			"annotation recbuf.dev/records: Record " + ns + "/commands is a Mailbox, which cannot be injected"},
		{"no Record at all", map[string]string{},
			"annotation recbuf.dev/records is missing or empty"},
		{"a bad listen address", map[string]string{recbufv1alpha1.AnnotationRecords: "telemetry", recbufv1alpha1.AnnotationListenAddress: "10.0.0.7"},
			`annotation recbuf.dev/listen-address: "10.0.0.7" is neither`},
		{"every interface for a Record whose consumers must show a token", map[string]string{recbufv1alpha1.AnnotationRecords: "telemetry,guarded", recbufv1alpha1.AnnotationListenAddress: "::"},
			"annotation recbuf.dev/listen-address=::: Record " + ns + "/guarded asks its consumers for ServiceAccount tokens (spec.consumers.authentication)"},
		{"a port the app declares", map[string]string{recbufv1alpha1.AnnotationRecords: "telemetry", recbufv1alpha1.AnnotationMetricsPort: "9000"},
			`annotation recbuf.dev/metrics-port=9000: port 9000 is container "app"'s own`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := appPod(ns, tt.annotations)
			pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 9000}}
			err := k8s.Create(context.Background(), pod)
			g := NewWithT(t)
			g.Expect(err).To(HaveOccurred())
			g.Expect(err.Error()).To(ContainSubstring(`admission webhook "sidecar.recbuf.dev" denied the request: ` + tt.want))
		})
	}
}

// TestInjectedSidecarsReportAndAreCountedInTheStatus runs the buffer
// process with the arguments the webhook gave an app pod's sidecar: its
// signed reports are taken, the pod is listed in status.pods and counted
// in status.sidecars, and a change of the Record's spec marks it outdated.
func TestInjectedSidecarsReportAndAreCountedInTheStatus(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "telemetry", ringSpec(16))
	setUpRecord(t, g, rec)
	pod := appPod(ns, map[string]string{recbufv1alpha1.AnnotationRecords: "telemetry"})
	create(t, g, pod)
	sc := pod.Spec.InitContainers[0]
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, InitContainerStatuses: []corev1.ContainerStatus{{
		Name: sc.Name, Image: sc.Image, Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}}}
	g.Expect(k8s.Status().Update(context.Background(), pod)).To(Succeed())

	startProcess(t, g, rec, pod.Name, sc.Args)
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.Sidecars).To(Equal(int32(1)))
		g.Expect(rec.Status.Pods).To(Equal([]recbufv1alpha1.RecordPodStatus{{Name: pod.Name, Connected: true}}))
		expectCondition(g, rec, recbufv1alpha1.ConditionSidecarsCurrent, metav1.ConditionTrue, recbufv1alpha1.ReasonSidecarsCurrent)
	}, timeout, poll).Should(Succeed())

	update(g, rec, func(r *recbufv1alpha1.Record) { r.Spec.Buffer.Capacity = ptr.To[int32](32) })
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.OutdatedSidecars).To(Equal(int32(1)))
		expectCondition(g, rec, recbufv1alpha1.ConditionSidecarsCurrent, metav1.ConditionFalse, recbufv1alpha1.ReasonOutdatedSidecars)
	}, timeout, poll).Should(Succeed())
}

// startProcess runs the buffer process with args as the pod named pod
// would, playing the kubelet's part for the mounted files.
func startProcess(t *testing.T, g Gomega, rec *recbufv1alpha1.Record, pod string, args []string) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: rec.Namespace, Name: rec.ChildName()}}
	g.Eventually(func() error { return get(cm) }, timeout, poll).Should(Succeed())
	settings := filepath.Join(t.TempDir(), report.SettingsKey)
	g.Expect(os.WriteFile(settings, []byte(cm.Data[report.SettingsKey]), 0o444)).To(Succeed())
	keyFile := filepath.Join(t.TempDir(), report.KeyFile)
	g.Expect(os.WriteFile(keyFile, reportKeyOf(t, rec.Namespace, rec.Name), 0o600)).To(Succeed())
	args = append(slices.Clone(args), "--http-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--log-level=error",
		"--report-settings-file="+settings, "--report-key-file="+keyFile)
	cfg, err := sidecar.ParseFlags(args, func(k string) string {
		if k == "POD_NAME" {
			return pod
		}
		return ""
	}, io.Discard)
	g.Expect(err).NotTo(HaveOccurred(), "the sidecar refuses the webhook's arguments %q", args)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := sidecar.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("starting the sidecar: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("sidecar: %v", err)
		}
	})
}

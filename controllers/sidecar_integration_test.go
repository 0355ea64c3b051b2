package controllers

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/sidecar"
	"github.com/recbuf/recbuf/internal/testutil/netcut"
)

// startSidecarOf runs, in process, the buffer process the manager's
// Deployment for rec describes: its container's arguments are parsed by the
// sidecar's own flag parser, and its settings file is the manager's
// ConfigMap as the kubelet would mount it, so the two sides' contract is
// what is tested. Only the listen addresses and the settings file's path
// are moved, and override (later flags win) changes what a test needs
// changed. The process runs as the pod podNameOf(rec). The returned stop
// ends the process and waits for it.
func startSidecarOf(t *testing.T, g Gomega, rec *recbufv1alpha1.Record, override ...string) (*sidecar.Sidecar, func()) {
	t.Helper()
	return startSidecarOfWith(t, g, rec, nil, override...)
}

// startSidecarOfWith is startSidecarOf with adjust, when set, applied to
// the parsed configuration: for what a pod gets from its environment
// rather than its arguments (the API server its ServiceAccount reaches).
func startSidecarOfWith(t *testing.T, g Gomega, rec *recbufv1alpha1.Record, adjust func(*sidecar.Config), override ...string) (*sidecar.Sidecar, func()) {
	t.Helper()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: rec.Namespace, Name: rec.ChildName()}}
	g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: rec.Namespace, Name: rec.ChildName()}}
	g.Eventually(func() error { return get(cm) }, timeout, poll).Should(Succeed())
	settings := filepath.Join(t.TempDir(), report.SettingsKey)
	g.Expect(os.WriteFile(settings, []byte(cm.Data[report.SettingsKey]), 0o444)).To(Succeed())
	args := append(append([]string{}, d.Spec.Template.Spec.Containers[0].Args...),
		"--http-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--log-level=error", "--report-settings-file="+settings)
	// The kubelet would mount the report key Secret: write its key where
	// the process reads it (unless override names another key file).
	ownKey := !slices.ContainsFunc(override, func(a string) bool { return strings.HasPrefix(a, "--report-key-file=") })
	for _, a := range args {
		if ownKey && strings.HasPrefix(a, "--report-key-file=") {
			keyFile := filepath.Join(t.TempDir(), report.KeyFile)
			g.Expect(os.WriteFile(keyFile, reportKeyOf(t, rec.Namespace, rec.Name), 0o600)).To(Succeed())
			args = append(args, "--report-key-file="+keyFile)
		}
	}
	args = append(args, override...)
	pod := podNameOf(rec)
	getenv := func(k string) string {
		if k == "POD_NAME" {
			return pod
		}
		return ""
	}
	cfg, err := sidecar.ParseFlags(args, getenv, io.Discard)
	g.Expect(err).NotTo(HaveOccurred(), "the sidecar refuses the manager's arguments %q", args)
	if adjust != nil {
		adjust(&cfg)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s, err := sidecar.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("starting the sidecar: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := s.Wait(); err != nil {
				t.Errorf("sidecar: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	g.Eventually(s.Connected, timeout, poll).Should(BeTrue(), "the sidecar connects to NATS")
	return s, stop
}

// podNameOf is the name of the pod a test's buffer process runs as.
func podNameOf(rec *recbufv1alpha1.Record) string { return rec.ChildName() + "-7d9f8-abcde" }

// TestASidecarsCountersReachTheRecordsStatus is issue 4's end-to-end check
// without a cluster: the manager on envtest, buffer processes built from
// the Deployments it wrote, and NATS. The status shows produced, lag and
// overwrite counters within a few report intervals, and Stale once the
// processes stop.
func TestASidecarsCountersReachTheRecordsStatus(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	ring := newRecord(ns, "ring", ringSpec(2))
	mailbox := newRecord(ns, "mailbox", recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeMailbox}})
	create(t, g, ring)
	create(t, g, mailbox)
	// Only the Records' current pods may report for them: the pods exist,
	// though no kubelet runs them (so, not running, they are not judged
	// silent once the processes stop).
	createPodOf(t, g, ring)
	createPodOf(t, g, mailbox)
	ringSidecar, stopRing := startSidecarOf(t, g, ring)
	_, stopMailbox := startSidecarOf(t, g, mailbox)

	for i := 1; i <= 10; i++ {
		g.Expect(natsConn.Publish(ring.DefaultSubject(), []byte(`{"temp":`+strconv.Itoa(i)+`}`))).To(Succeed())
	}
	for i := 1; i <= 3; i++ {
		g.Expect(natsConn.Publish(mailbox.DefaultSubject(), []byte("open"))).To(Succeed())
	}
	g.Expect(natsConn.Flush()).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(get(ring)).To(Succeed())
		g.Expect(ring.Status.Produced).To(Equal(int64(10)))
	}, timeout, poll).Should(Succeed())

	// A consumer resuming after value 1 of a ring that holds 9 and 10 is
	// told it missed 2..8, then gets 9 and 10.
	readResumedStream(t, g, ringSidecar.RecordURL("ring")+"/events?after=1", "id: "+ringSidecar.Instance()+"-10")

	g.Eventually(func(g Gomega) {
		g.Expect(get(ring)).To(Succeed())
		st := ring.Status
		g.Expect(st.ReportingPods).To(Equal(int32(1)))
		g.Expect(st.Produced).To(Equal(int64(10)))
		g.Expect(st.LagEvents).To(Equal(int64(1)))
		g.Expect(st.LaggedValues).To(Equal(int64(7)))
		g.Expect(st.Delivered).To(Equal(int64(2)))
		g.Expect(st.LastMessageTime).NotTo(BeNil())
		g.Expect(st.Pods).To(Equal([]recbufv1alpha1.RecordPodStatus{
			{Name: podNameOf(ring), Connected: true, Produced: 10}}))
		expectCondition(g, ring, recbufv1alpha1.ConditionReporting, metav1.ConditionTrue, recbufv1alpha1.ReasonReportsFresh)
		expectCondition(g, ring, recbufv1alpha1.ConditionNATSConnected, metav1.ConditionTrue, recbufv1alpha1.ReasonConnected)

		g.Expect(get(mailbox)).To(Succeed())
		g.Expect(mailbox.Status.Produced).To(Equal(int64(3)))
		g.Expect(mailbox.Status.Overwrites).To(Equal(int64(2)))
	}, timeout, poll).Should(Succeed())

	stopRing()
	stopMailbox()
	for _, rec := range []*recbufv1alpha1.Record{ring, mailbox} {
		g.Eventually(func(g Gomega) {
			g.Expect(get(rec)).To(Succeed())
			expectCondition(g, rec, recbufv1alpha1.ConditionReporting, metav1.ConditionFalse, recbufv1alpha1.ReasonStale)
			g.Expect(rec.Status.Produced).NotTo(BeZero(), "the last counters stay")
			g.Expect(rec.Status.Pods).To(BeEmpty(), "no pod is listed once none reports")
		}, timeout, poll).Should(Succeed())
	}
}

// readResumedStream reads an SSE stream until a line equal to until.
func readResumedStream(t *testing.T, g Gomega, url, until string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.TrimSpace(sc.Text()) == until {
			return
		}
	}
	t.Fatalf("stream ended (%v) before %q; got:\n%s", sc.Err(), until, strings.Join(lines, "\n"))
}

// runPodOf creates the pod podNameOf(rec) of rec's Deployment and marks it
// running, as the kubelet would (envtest runs none). The buffer process
// itself is startSidecarOf's.
func runPodOf(t *testing.T, g Gomega, rec *recbufv1alpha1.Record) *corev1.Pod {
	t.Helper()
	pod := createPodOf(t, g, rec)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
		Name: bufferpod.ContainerName, Image: testImage, Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
	}}}
	g.Expect(k8s.Status().Update(context.Background(), pod)).To(Succeed())
	return pod
}

// createPodOf creates the pod podNameOf(rec) of rec's Deployment, pending
// (no kubelet runs it).
func createPodOf(t *testing.T, g Gomega, rec *recbufv1alpha1.Record) *corev1.Pod {
	t.Helper()
	return createPod(t, g, rec, podNameOf(rec))
}

// createPod creates a pending pod called name of rec's Deployment.
func createPod(t *testing.T, g Gomega, rec *recbufv1alpha1.Record, name string) *corev1.Pod {
	t.Helper()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: rec.Namespace, Name: rec.ChildName()}}
	g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: rec.Namespace, Name: name, Labels: d.Spec.Template.Labels},
		Spec:       *d.Spec.Template.Spec.DeepCopy(),
	}
	create(t, g, pod)
	return pod
}

// TestABufferPodCutOffFromNATSIsNamedDisconnected is the real run of the
// NATSConnected signal: the manager, a buffer process built from the
// Deployment it wrote, running as a pod the cluster shows, and NATS. Only
// the buffer process's own link is cut (a relay between it and NATS); the
// manager stays connected. Within two report intervals the Record names
// the pod disconnected, Ready follows, and both recover with the link.
func TestABufferPodCutOffFromNATSIsNamedDisconnected(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "cut", ringSpec(4))
	create(t, g, rec)
	runAvailable(t, g, rec)

	link := netcut.Start(t, natsServerAddr())
	startSidecarOf(t, g, rec, "--nats-url=nats://"+link.Addr())
	pod := podNameOf(rec)
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionNATSConnected, metav1.ConditionTrue, recbufv1alpha1.ReasonConnected)
		expectCondition(g, rec, recbufv1alpha1.ConditionReady, metav1.ConditionTrue, recbufv1alpha1.ReasonReady)
		g.Expect(rec.Status.Pods).To(Equal([]recbufv1alpha1.RecordPodStatus{{Name: pod, Connected: true}}))
	}, timeout, poll).Should(Succeed())

	link.Cut()
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionNATSConnected, metav1.ConditionFalse, recbufv1alpha1.ReasonDisconnected)
		g.Expect(meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionNATSConnected).Message).To(
			Equal("1 of 1 buffer pods are not connected to NATS (running, but no report for 1.5s): " + pod))
		expectCondition(g, rec, recbufv1alpha1.ConditionReady, metav1.ConditionFalse, recbufv1alpha1.ReasonDisconnected)
		g.Expect(rec.Status.Pods).To(Equal([]recbufv1alpha1.RecordPodStatus{{Name: pod, Connected: false}}))
	}, 2*testConfig.ReportInterval, poll).Should(Succeed(), "within two report intervals of the cut")
	expectEvent(t, g, rec, corev1.EventTypeWarning, recbufv1alpha1.ReasonDisconnected)

	link.Restore()
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionNATSConnected, metav1.ConditionTrue, recbufv1alpha1.ReasonConnected)
		expectCondition(g, rec, recbufv1alpha1.ConditionReady, metav1.ConditionTrue, recbufv1alpha1.ReasonReady)
	}, timeout, poll).Should(Succeed())
}

// runAvailable runs rec's pod (runPodOf) and marks its Deployment
// available, as the Deployment controller would: the state in which Ready
// depends on the reports alone.
func runAvailable(t *testing.T, g Gomega, rec *recbufv1alpha1.Record) {
	t.Helper()
	runPodOf(t, g, rec)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: rec.Namespace, Name: rec.ChildName()}}
	setDeploymentStatus(t, g, d, 1, []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"}})
}

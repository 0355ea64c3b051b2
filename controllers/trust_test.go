package controllers

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/report"
)

// TestForgedReportsChangeNothing is issue 9's attack, replayed on the suite:
// a NATS client without the Record's report key publishes reports that name
// a real Record (on any subject, on the right one unsigned, with a wrong
// signature, with a pod name no status can hold). None changes the Record's
// status, conditions, counters, status.pods or Events; the genuine buffer
// process, built from the Deployment's arguments, still reports, and later
// genuine reports still update the status.
func TestForgedReportsChangeNothing(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "telemetry", ringSpec(4))
	create(t, g, rec)
	runAvailable(t, g, rec)
	startSidecarOf(t, g, rec)
	pod := podNameOf(rec)
	genuine := []recbufv1alpha1.RecordPodStatus{{Name: pod, Connected: true}}
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.Pods).To(Equal(genuine))
		g.Expect(rec.Status.ReportingPods).To(Equal(int32(1)))
		expectCondition(g, rec, recbufv1alpha1.ConditionNATSConnected, metav1.ConditionTrue, recbufv1alpha1.ReasonConnected)
		expectCondition(g, rec, recbufv1alpha1.ConditionReady, metav1.ConditionTrue, recbufv1alpha1.ReasonReady)
	}, timeout, poll).Should(Succeed())
	before := rec.Status.DeepCopy()
	// The recorder writes Events on a goroutine of its own: wait for those
	// of the transitions just seen before taking them as the baseline.
	var eventsBefore []string
	g.Eventually(func(g Gomega) {
		eventsBefore = eventsOf(g, rec)
		g.Expect(eventsBefore).To(ContainElements(HavePrefix("Normal/Ready/"), HavePrefix("Normal/Connected/"), HavePrefix("Normal/ReportsFresh/")))
	}, timeout, poll).Should(Succeed())

	forged := func(podName string) []byte {
		data, err := json.Marshal(report.Report{
			Namespace: ns, Record: rec.Name, RecordUID: string(rec.UID), Pod: podName, Time: time.Now(),
			Counters: report.Counters{Produced: 999999999, Subscribers: 7, Dropped: 5},
		})
		g.Expect(err).NotTo(HaveOccurred())
		return data
	}
	right := func(podName string) string { return report.Subject(testPrefix, ns, rec.Name, podName) }
	long := strings.Repeat("p", 300)
	attacks := []struct {
		name    string
		subject string
		data    []byte
		sig     string
	}{
		{"a report for evil-pod on an arbitrary subject", testPrefix + ".other.x.y", forged("evil-pod"), ""},
		{"an unsigned report for evil-pod on its right subject", right("evil-pod"), forged("evil-pod"), ""},
		{"an unsigned report in the genuine pod's name", right(pod), forged(pod), ""},
		{"a wrongly signed report in the genuine pod's name", right(pod), forged(pod), strings.Repeat("ab", 32)},
		{"a wrongly signed report for evil-pod", right("evil-pod"), forged("evil-pod"), "not-hex"},
	}
	for range 3 {
		for _, a := range attacks {
			m := nats.NewMsg(a.subject)
			m.Data = a.data
			if a.sig != "" {
				m.Header.Set("Recbuf-Report-Signature", a.sig)
			}
			g.Expect(natsConn.PublishMsg(m)).To(Succeed(), a.name)
		}
		g.Expect(natsConn.Flush()).To(Succeed())
		time.Sleep(testConfig.ReportInterval / 2)
	}
	// Three report intervals: every forged report had its chance at a
	// status write.
	g.Consistently(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.Pods).To(Equal(genuine), "status.pods")
		g.Expect(rec.Status.RecordCounters).To(Equal(before.RecordCounters), "counters")
		g.Expect(rec.Status.ReportingPods).To(Equal(before.ReportingPods), "reportingPods")
		for _, c := range before.Conditions {
			now := meta.FindStatusCondition(rec.Status.Conditions, c.Type)
			g.Expect(now).NotTo(BeNil(), c.Type)
			g.Expect([]string{string(now.Status), now.Reason, now.Message}).To(Equal([]string{string(c.Status), c.Reason, c.Message}), c.Type)
		}
		g.Expect(eventsOf(g, rec)).To(Equal(eventsBefore), "Events")
	}, 3*testConfig.ReportInterval, 100*time.Millisecond).Should(Succeed())

	// A pod name no status can hold (at most 253 characters) is refused at
	// intake: while such reports keep coming, genuine reports still update
	// the status (a status patch that quoted it would be refused whole).
	longName := func() {
		m := nats.NewMsg(right(long))
		m.Data = forged(long)
		m.Header.Set("Recbuf-Report-Signature", strings.Repeat("00", 32))
		g.Expect(natsConn.PublishMsg(m)).To(Succeed())
		g.Expect(natsConn.PublishMsg(nats.NewMsg(right(long)))).To(Succeed())
		g.Expect(natsConn.Publish(right(long), forged(long))).To(Succeed())
	}
	longName()
	for range 5 {
		g.Expect(natsConn.Publish(rec.DefaultSubject(), []byte(`{"v":1}`))).To(Succeed())
	}
	g.Expect(natsConn.Flush()).To(Succeed())
	g.Eventually(func(g Gomega) {
		longName()
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.Produced).To(Equal(int64(5)))
		g.Expect(rec.Status.Pods).To(Equal([]recbufv1alpha1.RecordPodStatus{{Name: pod, Connected: true, Produced: 5}}))
	}, 10*testConfig.ReportInterval, poll).Should(Succeed())
}

// eventsOf lists the type/reason/message of the Events about rec.
func eventsOf(g Gomega, rec *recbufv1alpha1.Record) []string {
	var list eventsv1.EventList
	g.Expect(k8s.List(context.Background(), &list, client.InNamespace(rec.Namespace))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Regarding.UID == rec.UID {
			out = append(out, e.Type+"/"+e.Reason+"/"+e.Note)
		}
	}
	return out
}

// TestCredentialsGoOnlyToAllowedServers: a Record that names a credentials
// Secret may only connect to a NATS server the cluster admin allows, and
// not over plaintext to a server other than the manager's own; otherwise it
// is Stalled, saying why, and no Deployment (so no pod holding the
// credentials) exists. A Record without credentials may name any server.
func TestCredentialsGoOnlyToAllowedServers(t *testing.T) {
	ns := newNamespace(t)
	creds := &recbufv1alpha1.SecretReference{Name: "nats-creds"}
	tests := []struct {
		name        string
		nats        recbufv1alpha1.NATSSource
		wantReason  string
		wantMessage string
	}{
		{"a foreign server with credentials is refused",
			recbufv1alpha1.NATSSource{URL: "tls://nats.attacker.example:4222", CredentialsSecretRef: creds},
			recbufv1alpha1.ReasonNATSServerNotAllowed,
			"spec.source.nats.url names nats.attacker.example:4222, which is not among the NATS servers the cluster admin allows a Record's credentials to go to (the manager's --allowed-nats-servers): no buffer pod is created or updated with it"},
		{"one foreign server in a list is enough to refuse it",
			recbufv1alpha1.NATSSource{URL: "tls://nats.example:4222,tls://nats.attacker.example", CredentialsSecretRef: creds},
			recbufv1alpha1.ReasonNATSServerNotAllowed,
			"spec.source.nats.url names nats.attacker.example:4222, which is not among"},
		// The Record's pods resolve a bare Service name in the Record's
		// namespace: nats.example is allowed, nats.<this namespace> not.
		{"a bare Service name is the Record's namespace's server, not an allowed one",
			recbufv1alpha1.NATSSource{URL: "tls://nats:4222", CredentialsSecretRef: creds},
			recbufv1alpha1.ReasonNATSServerNotAllowed,
			"spec.source.nats.url names nats:4222 (nats." + ns + ".svc:4222 from the Record's namespace), which is not among"},
		{"an allowed server in its fully qualified form is allowed as it is",
			recbufv1alpha1.NATSSource{URL: "tls://nats.example.svc.cluster.local:4222,nats://nats.attacker.example", CredentialsSecretRef: creds},
			recbufv1alpha1.ReasonNATSServerNotAllowed,
			"spec.source.nats.url names nats.attacker.example:4222, which is not among"},
		{"an allowed server other than the manager's own over plaintext is refused",
			recbufv1alpha1.NATSSource{URL: "nats://nats.example:4222", CredentialsSecretRef: creds},
			recbufv1alpha1.ReasonPlaintextNATSCredentials,
			"spec.source.nats.url would send the credentials of spec.source.nats.credentialsSecretRef over plaintext nats:// to nats.example:4222"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			rec := newRecord(ns, "refused-"+string(rune('a'+i)), recbufv1alpha1.RecordSpec{
				Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSingleLatest},
				Source: &recbufv1alpha1.SourceSpec{NATS: tt.nats},
			})
			create(t, g, rec)
			g.Eventually(func(g Gomega) {
				g.Expect(get(rec)).To(Succeed())
				expectCondition(g, rec, recbufv1alpha1.ConditionStalled, metav1.ConditionTrue, tt.wantReason)
				expectCondition(g, rec, recbufv1alpha1.ConditionReady, metav1.ConditionFalse, tt.wantReason)
				g.Expect(meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionStalled).Message).To(HavePrefix(tt.wantMessage))
			}, timeout, poll).Should(Succeed())
			expectEvent(t, g, rec, corev1.EventTypeWarning, tt.wantReason)
			d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rec.ChildName()}}
			g.Consistently(func() bool { return apierrors.IsNotFound(get(d)) }, time.Second, poll).Should(BeTrue(), "no Deployment exists")
		})
	}

	t.Run("a foreign server without credentials is the Record's own business", func(t *testing.T) {
		g := NewWithT(t)
		rec := newRecord(ns, "open", recbufv1alpha1.RecordSpec{
			Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSingleLatest},
			Source: &recbufv1alpha1.SourceSpec{NATS: recbufv1alpha1.NATSSource{URL: "nats://nats.elsewhere.example:4222"}},
		})
		create(t, g, rec)
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rec.ChildName()}}
		g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())
	})

	t.Run("a Record moved to a refused server keeps its Deployment as it was", func(t *testing.T) {
		g := NewWithT(t)
		rec := newRecord(ns, "moved", recbufv1alpha1.RecordSpec{
			Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSingleLatest},
			Source: &recbufv1alpha1.SourceSpec{NATS: recbufv1alpha1.NATSSource{URL: "tls://nats.example:4222", CredentialsSecretRef: creds}},
		})
		create(t, g, rec)
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rec.ChildName()}}
		g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())
		update(g, rec, func(rec *recbufv1alpha1.Record) { rec.Spec.Source.NATS.URL = "tls://nats.attacker.example:4222" })
		g.Eventually(func(g Gomega) {
			g.Expect(get(rec)).To(Succeed())
			expectCondition(g, rec, recbufv1alpha1.ConditionStalled, metav1.ConditionTrue, recbufv1alpha1.ReasonNATSServerNotAllowed)
		}, timeout, poll).Should(Succeed())
		g.Consistently(func(g Gomega) {
			g.Expect(get(d)).To(Succeed())
			g.Expect(d.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--nats-url=tls://nats.example:4222"))
			g.Expect(strings.Join(d.Spec.Template.Spec.Containers[0].Args, " ")).NotTo(ContainSubstring("attacker"))
		}, time.Second, poll).Should(Succeed())
	})
}

// TestAForeignReportKeySecretOnlyBreaksItsRecordsReports: the manager only
// creates report key Secrets and never reads one. A Secret that someone
// else made under a Record's key Secret name beforehand, with another key,
// is left as it is; the Record's pods, which mount it, sign with the wrong
// key, so their reports are refused (bad_signature) and the pod looks
// silent: the Record's counters do not change, the manager keeps
// reconciling, and another Record of the namespace reports as ever.
func TestAForeignReportKeySecretOnlyBreaksItsRecordsReports(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	foreignKey := []byte("someone else's key, 32 bytes or more")
	foreign := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: reportKeySecretOf("telemetry")},
		Data:       map[string][]byte{report.KeyFile: foreignKey},
	}
	create(t, g, foreign)
	rec := newRecord(ns, "telemetry", ringSpec(4))
	other := newRecord(ns, "other", ringSpec(4))
	create(t, g, rec)
	create(t, g, other)
	for _, r := range []*recbufv1alpha1.Record{rec, other} {
		runPodOf(t, g, r)
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: r.ChildName()}}
		setDeploymentStatus(t, g, d, 1, []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"}})
		g.Expect(d.Spec.Template.Spec.Volumes).To(ContainElement(HaveField("VolumeSource.Secret.SecretName", reportKeySecretOf(r.Name))))
	}
	badBefore := rejectedReports(g, "bad_signature")

	// The pod mounts the foreign Secret, as the kubelet would.
	keyFile := filepath.Join(t.TempDir(), report.KeyFile)
	g.Expect(os.WriteFile(keyFile, foreignKey, 0o600)).To(Succeed())
	startSidecarOf(t, g, rec, "--report-key-file="+keyFile)
	startSidecarOf(t, g, other)
	for range 5 {
		g.Expect(natsConn.Publish(rec.DefaultSubject(), []byte(`{"v":1}`))).To(Succeed())
	}
	for range 3 {
		g.Expect(natsConn.Publish(other.DefaultSubject(), []byte(`{"v":1}`))).To(Succeed())
	}
	g.Expect(natsConn.Flush()).To(Succeed())

	pod := podNameOf(rec)
	g.Eventually(func(g Gomega) {
		g.Expect(rejectedReports(g, "bad_signature")).To(BeNumerically(">=", badBefore+2), "the pod's reports are refused")
		g.Expect(get(other)).To(Succeed())
		g.Expect(other.Status.Produced).To(Equal(int64(3)), "the other Record reports")
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionNATSConnected, metav1.ConditionFalse, recbufv1alpha1.ReasonDisconnected)
		g.Expect(rec.Status.Pods).To(Equal([]recbufv1alpha1.RecordPodStatus{{Name: pod, Connected: false}}))
	}, timeout, poll).Should(Succeed())
	reconciled := reconciles.get(client.ObjectKeyFromObject(rec))
	g.Consistently(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.RecordCounters).To(Equal(recbufv1alpha1.RecordCounters{}), "counters")
		g.Expect(rec.Status.ReportingPods).To(BeZero())
		g.Expect(rec.Status.Pods).To(Equal([]recbufv1alpha1.RecordPodStatus{{Name: pod, Connected: false}}))
		g.Expect(meta.IsStatusConditionTrue(rec.Status.Conditions, recbufv1alpha1.ConditionStalled)).To(BeFalse(), "not Stalled")
	}, 3*testConfig.ReportInterval, 100*time.Millisecond).Should(Succeed())
	g.Expect(reconciles.get(client.ObjectKeyFromObject(rec))).To(BeNumerically(">", reconciled), "the manager keeps reconciling the Record")

	// The foreign Secret is as its author left it: the manager did not
	// take it over, relabel or rewrite it.
	g.Expect(get(foreign)).To(Succeed())
	g.Expect(foreign.Data).To(Equal(map[string][]byte{report.KeyFile: foreignKey}))
	g.Expect(foreign.OwnerReferences).To(BeEmpty())
	g.Expect(foreign.Labels).To(BeEmpty())
}

// rejectedReports reads recbuf_reports_rejected_total{reason} from the
// manager's metrics registry.
func rejectedReports(g Gomega, reason string) float64 {
	families, err := metrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "recbuf_reports_rejected_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	g.Expect(reason).To(BeEmpty(), "no recbuf_reports_rejected_total series for this reason")
	return 0
}

// TestReportKeysAreDerivedPerRecord: a Record's report key is a function
// of the master key and the Record's namespace, name and UID: the same for
// every pass and every manager replica with that master key, another for
// any other Record or incarnation; its Secret's name follows the master
// key, so that a new master key means new Secrets and rolled pods.
func TestReportKeysAreDerivedPerRecord(t *testing.T) {
	g := NewWithT(t)
	cfg := Config{ReportMasterKey: testMasterKey}
	rec := newRecord("ns", "telemetry", ringSpec(4))
	rec.UID = "uid-1"
	key := derivedReportKey(rec, cfg)
	g.Expect(key).To(HaveLen(report.KeySize))
	g.Expect(derivedReportKey(rec.DeepCopy(), Config{ReportMasterKey: append([]byte{}, testMasterKey...)})).To(Equal(key), "stable")
	g.Expect(key).To(Equal(report.DeriveKey(testMasterKey, "ns", "telemetry", "uid-1")))

	variants := map[string]*recbufv1alpha1.Record{}
	recreated := rec.DeepCopy()
	recreated.UID = "uid-2"
	variants["a recreated Record"] = recreated
	renamed := rec.DeepCopy()
	renamed.Name = "telemetry2"
	variants["another Record"] = renamed
	moved := rec.DeepCopy()
	moved.Namespace = "ns2"
	variants["the same name in another namespace"] = moved
	for name, v := range variants {
		g.Expect(derivedReportKey(v, cfg)).NotTo(Equal(key), name)
	}
	otherMaster := Config{ReportMasterKey: []byte("another master key, 32 bytes or more")}
	g.Expect(derivedReportKey(rec, otherMaster)).NotTo(Equal(key), "another master key")

	g.Expect(reportKeySecretName(rec, cfg)).To(Equal("telemetry-recbuf-report-key-" + report.MasterKeyFingerprint(testMasterKey)))
	g.Expect(reportKeySecretName(recreated, cfg)).To(Equal(reportKeySecretName(rec, cfg)), "the name does not depend on the UID")
	g.Expect(reportKeySecretName(rec, otherMaster)).NotTo(Equal(reportKeySecretName(rec, cfg)), "a new master key, a new Secret")
	d := &appsv1.Deployment{}
	mutateDeployment(d, rec, otherMaster)
	g.Expect(d.Spec.Template.Spec.Volumes).To(ContainElement(HaveField("VolumeSource.Secret.SecretName", reportKeySecretName(rec, otherMaster))),
		"the pod template follows the master key: a rollout")
}

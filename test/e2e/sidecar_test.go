//go:build e2e

package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The sidecar mode's objects in the test namespace.
const (
	sidecarApp    = "sidecar-app"    // a Deployment reading telemetry on localhost
	doomedRecord  = "sidecar-doomed" // a Record deleted under a running app pod
	doomedApp     = "sidecar-doomed-app"
	webhookSecret = "recbuf-webhook-cert"
	webhookConfig = "recbuf-sidecar-injector"
)

// sidecarSpecs prove the sidecar mode (docs/sidecar.md) with the chart's
// default webhook: its certificate is the manager's own, an annotated app
// Deployment gets the telemetry buffer on localhost and reads the
// simulator's values in order, the Record counts and lists the pod, a bad
// annotation is refused with a message naming it, and a deleted Record
// leaves running app pods alone while refusing new ones.
func sidecarSpecs() {
	It("serves the sidecar webhook with a certificate the manager made itself", func() {
		By("reading the webhook's Secret and configuration: the caBundle is the Secret's CA")
		Eventually(func(g Gomega) {
			var sec struct {
				Data map[string]string `json:"data"`
			}
			g.Expect(getJSON(&sec, "secret", webhookSecret, "-n", systemNamespace)).To(Succeed())
			g.Expect(sec.Data).To(HaveKey("ca.crt"))
			g.Expect(sec.Data).To(HaveKey("tls.crt"))
			bundle, err := kubectl("get", "mutatingwebhookconfiguration", webhookConfig, "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(bundle).To(Equal(sec.Data["ca.crt"]))
			ca, err := base64.StdEncoding.DecodeString(bundle)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(ca)).To(ContainSubstring("BEGIN CERTIFICATE"))
		}).Should(Succeed())
		By("checking that the manager wrote the Secret's data (its field manager), no cert-manager")
		managers, err := kubectl("get", "secret", webhookSecret, "-n", systemNamespace, "--show-managed-fields", "-o", "jsonpath={.metadata.managedFields[*].manager}")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Fields(managers)).To(ContainElement("manager"), "field managers %q", managers)
	})

	It("injects the telemetry buffer into an annotated app Deployment, which reads the simulator's values on localhost in order", func() {
		By("deploying an app labelled " + "recbuf.dev/inject=true and annotated recbuf.dev/records=" + ringRecord)
		Expect(kubectlApply(sidecarAppDeployment(sidecarApp, ringRecord))).Error().NotTo(HaveOccurred())
		DeferCleanup(func() { _, _ = kubectl("delete", "deployment", sidecarApp, "-n", namespace, "--ignore-not-found") })
		var pod string
		Eventually(func(g Gomega) {
			pod = appPodName(g, sidecarApp)
			out, err := kubectl("get", "pod", pod, "-n", namespace, "-o", "jsonpath={.spec.initContainers[*].name} {.spec.initContainers[0].restartPolicy}")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(Equal("recbuf-" + ringRecord + " Always"))
		}).Should(Succeed())

		By("reading the app's summary: 100 values from localhost, in order")
		var summary map[string]any
		Eventually(func(g Gomega) {
			summary = containerSummary(g, pod, "app")
		}).WithTimeout(3 * time.Minute).WithPolling(5 * time.Second).Should(Succeed())
		Expect(number(summary, "values")).To(BeNumerically("==", 100))
		Expect(summary).To(HaveKeyWithValue("ordered", true))

		By("checking that the Record lists the app pod in status.pods and counts it in status.sidecars, and kubectl get -o wide shows it")
		Eventually(func(g Gomega) {
			var r struct {
				Status struct {
					Sidecars int `json:"sidecars"`
					Pods     []struct {
						Name      string `json:"name"`
						Connected bool   `json:"connected"`
					} `json:"pods"`
				} `json:"status"`
			}
			g.Expect(getJSON(&r, "record", ringRecord, "-n", namespace)).To(Succeed())
			g.Expect(r.Status.Sidecars).To(Equal(1))
			g.Expect(r.Status.Pods).To(ContainElement(And(HaveField("Name", pod), HaveField("Connected", true))))
			wide, err := kubectl("get", "record", ringRecord, "-n", namespace, "-o", "wide")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(wide).To(ContainSubstring("SIDECARS"))
		}).Should(Succeed())
	})

	It("lets other pods read an app pod's buffer only when the pod asks for every interface", func() {
		const open, local = "sidecar-open", "sidecar-local"
		By("creating two app pods with the telemetry sidecar: " + local + " on localhost, the default, and " + open + " annotated recbuf.dev/listen-address=0.0.0.0")
		for name, address := range map[string]string{open: "0.0.0.0", local: ""} {
			Expect(kubectlApply(sidecarAppPodListening(name, ringRecord, address))).Error().NotTo(HaveOccurred())
			DeferCleanup(func() { _, _ = kubectl("delete", "pod", name, "-n", namespace, "--ignore-not-found", "--wait=false") })
		}
		ips := map[string]string{}
		for _, name := range []string{open, local} {
			Eventually(verifyPodReady(name)).WithTimeout(2 * time.Minute).Should(Succeed())
			ip, err := kubectl("get", "pod", name, "-n", namespace, "-o", "jsonpath={.status.podIP}")
			Expect(err).NotTo(HaveOccurred())
			ips[name] = ip
		}

		By("reading the Record's info from another pod at each app pod's IP")
		phase, logs := runOnce("reach-"+open, "get", "http://"+ips[open]+":8080/v1/records/"+ringRecord, "--timeout=20s")
		Expect(phase).To(Equal("Succeeded"), logs)
		Expect(logs).To(ContainSubstring(`"status":200`))
		phase, logs = runOnce("reach-"+local, "get", "http://"+ips[local]+":8080/v1/records/"+ringRecord, "--timeout=20s")
		Expect(phase).To(Equal("Failed"), "nothing listens on %s's IP: %s", local, logs)
		Expect(logs).To(ContainSubstring("connection refused"))
	})

	It("refuses a pod whose annotation names a Record that does not exist, naming the annotation and the Record", func() {
		out, err := kubectlApply(sidecarAppPod("sidecar-bad", "nosuch"))
		Expect(err).To(HaveOccurred())
		Expect(err.Error() + out).To(ContainSubstring(`denied the request: annotation recbuf.dev/records: Record ` + namespace + `/nosuch does not exist`))
	})

	It("leaves running app pods alone when their Record is deleted, and refuses new ones", func() {
		By("creating Record " + doomedRecord + " and an app pod with its sidecar")
		Expect(kubectlApply(fmt.Sprintf(`apiVersion: recbuf.dev/v1alpha1
kind: Record
metadata: {name: %s, namespace: %s}
spec:
  buffer: {type: SingleLatest}
  source: {nats: {subject: devices.state}}
`, doomedRecord, namespace))).Error().NotTo(HaveOccurred())
		Eventually(verifyRecordReady(doomedRecord)).WithTimeout(3 * time.Minute).Should(Succeed())
		Expect(kubectlApply(sidecarAppPod(doomedApp, doomedRecord))).Error().NotTo(HaveOccurred())
		DeferCleanup(func() { _, _ = kubectl("delete", "pod", doomedApp, "-n", namespace, "--ignore-not-found") })
		Eventually(verifyPodReady(doomedApp)).WithTimeout(2 * time.Minute).Should(Succeed())

		By("deleting the Record: the app pod keeps running with its sidecar")
		Expect(kubectl("delete", "record", doomedRecord, "-n", namespace, "--wait", "--timeout=1m")).Error().NotTo(HaveOccurred())
		Consistently(verifyPodReady(doomedApp)).WithTimeout(20 * time.Second).WithPolling(2 * time.Second).Should(Succeed())

		By("a new pod naming it is refused")
		_, err := kubectlApply(sidecarAppPod(doomedApp+"-2", doomedRecord))
		Expect(err).To(MatchError(ContainSubstring("Record " + namespace + "/" + doomedRecord + " does not exist")))
	})

	It("measures the webhook's admission latency over pod creations", func() {
		const n = 100
		By(fmt.Sprintf("creating %d annotated pods (server-side dry run: admitted, not stored) and timing each", n))
		var took []time.Duration
		for i := range n {
			start := time.Now()
			_, err := run(sidecarAppPod(fmt.Sprintf("latency-%d", i), ringRecord), nil, "kubectl", "--context", kubeContext, "apply", "--dry-run=server", "-f", "-")
			Expect(err).NotTo(HaveOccurred())
			took = append(took, time.Since(start))
		}
		sort.Slice(took, func(a, b int) bool { return took[a] < took[b] })
		By(fmt.Sprintf("kubectl round trip per admitted pod: p50 %s, p99 %s", took[n/2], took[n*99/100]))
		metrics, err := kubectl("get", "--raw", "/metrics")
		Expect(err).NotTo(HaveOccurred())
		var lines []string
		sc := bufio.NewScanner(strings.NewReader(metrics))
		sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "apiserver_admission_webhook_admission_duration_seconds") && strings.Contains(sc.Text(), "sidecar.recbuf.dev") {
				lines = append(lines, sc.Text())
			}
		}
		Expect(lines).NotTo(BeEmpty(), "the API server measures the webhook")
		p50, p99 := histogramQuantile(lines, 0.5), histogramQuantile(lines, 0.99)
		_, _ = fmt.Fprintf(GinkgoWriter, "webhook admission latency (apiserver_admission_webhook_admission_duration_seconds): p50 <= %s, p99 <= %s\n", p50, p99)
		By(fmt.Sprintf("apiserver_admission_webhook_admission_duration_seconds: p50 <= %s, p99 <= %s (bucket bounds)", p50, p99))
	})
}

// histogramQuantile is the upper bound of the bucket holding quantile q of
// a Prometheus histogram given by its _bucket lines (summed over labels
// other than le).
func histogramQuantile(lines []string, q float64) string {
	counts := map[string]float64{}
	var les []string
	for _, l := range lines {
		if !strings.Contains(l, "_bucket{") {
			continue
		}
		i := strings.Index(l, `le="`)
		if i < 0 {
			continue
		}
		le := l[i+4 : i+4+strings.Index(l[i+4:], `"`)]
		var v float64
		_, _ = fmt.Sscan(l[strings.LastIndex(l, " ")+1:], &v)
		if _, ok := counts[le]; !ok {
			les = append(les, le)
		}
		counts[le] += v
	}
	total := counts["+Inf"]
	// The buckets are cumulative, in the order the server writes them.
	for _, le := range les {
		if counts[le] >= q*total {
			return le + "s"
		}
	}
	return "+Inf"
}

// sidecarAppDeployment is an app Deployment whose container streams
// record from its sidecar on localhost (recbufctl, of the edgesim image).
func sidecarAppDeployment(name, record string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata:
      labels: {app: %[1]s, recbuf.dev/inject: "true"}
      annotations: {recbuf.dev/records: %[3]s}
    spec:
%[4]s`, name, namespace, record, indent(appPodSpec(record, []string{"stream", "http://localhost:8080/v1/records/" + record, "--count=100", "--duration=120s", "--quiet"}), "      "))
}

// sidecarAppPod is a pod asking for record's sidecar whose app waits.
func sidecarAppPod(name, record string) string {
	return sidecarAppPodListening(name, record, "")
}

// sidecarAppPodListening is sidecarAppPod with its consumer API on
// address (annotation recbuf.dev/listen-address; "": the default).
func sidecarAppPodListening(name, record, address string) string {
	listen := ""
	if address != "" {
		listen = fmt.Sprintf(", recbuf.dev/listen-address: %q", address)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
  labels: {app: sidecar-e2e, recbuf.dev/inject: "true"}
  annotations: {recbuf.dev/records: %s%s}
spec:
%s`, name, namespace, record, listen, indent(appPodSpec(record, []string{"stream", "http://localhost:8080/v1/records/" + record, "--duration=10m", "--quiet"}), "  "))
}

// appPodSpec is the restricted spec of an app pod running recbufctl args.
func appPodSpec(_ string, args []string) string {
	a, _ := json.Marshal(args)
	return fmt.Sprintf(`automountServiceAccountToken: false
terminationGracePeriodSeconds: 5
securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
containers:
- name: app
  image: %s
  imagePullPolicy: IfNotPresent
  command: ["/recbufctl"]
  args: %s
  securityContext: {runAsUser: 65532, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
`, edgesimImage, a)
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = by + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// appPodName is the name of the one running pod of Deployment app.
func appPodName(g Gomega, app string) string {
	out, err := kubectl("get", "pods", "-n", namespace, "-l", "app="+app, "--field-selector=status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}")
	g.Expect(err).NotTo(HaveOccurred())
	names := strings.Fields(out)
	g.Expect(names).To(HaveLen(1), "running pods of %s", app)
	return names[0]
}

// containerSummary is the last summary line container printed, in its
// current run or, once it exited and restarted, its previous one.
func containerSummary(g Gomega, pod, container string) map[string]any {
	for _, prev := range []bool{false, true} {
		args := []string{"logs", pod, "-c", container, "-n", namespace}
		if prev {
			args = append(args, "--previous")
		}
		logs, err := kubectl(args...)
		if err != nil {
			continue
		}
		var summary map[string]any
		for l := range strings.SplitSeq(logs, "\n") {
			var line map[string]any
			if json.Unmarshal([]byte(l), &line) == nil && line["event"] == "summary" {
				summary = line
			}
		}
		if summary != nil {
			return summary
		}
	}
	g.Expect(false).To(BeTrue(), "no summary yet in the logs of %s/%s", pod, container)
	return nil
}

// runOnce runs recbufctl ARGS in a consumer pod until it ends, and
// returns how (Succeeded or Failed) with its logs.
func runOnce(name string, args ...string) (phase, logs string) {
	GinkgoHelper()
	_, _ = kubectl("delete", "pod", name, "-n", namespace, "--ignore-not-found", "--wait")
	Expect(kubectlApply(consumerPod(name, args...))).Error().NotTo(HaveOccurred())
	DeferCleanup(func() { _, _ = kubectl("delete", "pod", name, "-n", namespace, "--ignore-not-found", "--wait=false") })
	Eventually(func(g Gomega) {
		out, err := kubectl("get", "pod", name, "-n", namespace, "-o", "jsonpath={.status.phase}")
		g.Expect(err).NotTo(HaveOccurred())
		phase = out
		g.Expect(phase).To(BeElementOf("Succeeded", "Failed"), "pod %s has finished", name)
	}).WithTimeout(2 * time.Minute).Should(Succeed())
	logs, err := kubectl("logs", name, "-n", namespace)
	Expect(err).NotTo(HaveOccurred())
	return phase, logs
}

// verifyPodReady checks that pod is Ready.
func verifyPodReady(pod string) func(Gomega) {
	return func(g Gomega) {
		out, err := kubectl("get", "pod", pod, "-n", namespace, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out).To(Equal("True"), "pod %s Ready", pod)
	}
}

//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// samples are the Records of config/samples, by buffer type.
const (
	ringRecord   = "telemetry" // SpmcRing, capacity 1024, devices.telemetry
	latestRecord = "state"     // SingleLatest, devices.state
	mailRecord   = "commands"  // Mailbox, devices.commands
)

var samples = []string{ringRecord, latestRecord, mailRecord}

// endpoint is a Record's consumer URL, as its status publishes it.
func endpoint(name string) string {
	return fmt.Sprintf("http://%s-recbuf.%s.svc:8080/v1/records/%s", name, namespace, name)
}

// imageValues are helm --set flags for an image value named key.
func imageValues(key, image string) []string {
	repo, tag := image, ""
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		repo, tag = image[:i], image[i+1:]
	}
	return []string{"--set", key + ".repository=" + repo, "--set-string", key + ".tag=" + tag}
}

var _ = Describe("recbuf", Ordered, func() {
	BeforeAll(func() {
		By("removing what a previous run left behind")
		_, _ = helm("uninstall", release, "-n", systemNamespace, "--wait", "--ignore-not-found")
		Expect(kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait", "--timeout=2m")).Error().NotTo(HaveOccurred())
		Expect(kubectl("delete", "crd", "records.recbuf.dev", "--ignore-not-found", "--wait", "--timeout=1m")).Error().NotTo(HaveOccurred())

		By("creating namespace " + namespace + " under the restricted Pod Security Standard")
		Expect(kubectl("create", "namespace", namespace)).Error().NotTo(HaveOccurred())
		Expect(kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")).Error().NotTo(HaveOccurred())

		By("installing the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs, generated from its API module")
		crds, err := run("", nil, filepath.Join(rootDir, "hack", "prometheus-operator-crds.sh"))
		Expect(err).NotTo(HaveOccurred())
		for _, crd := range strings.Fields(crds) {
			Expect(kubectl("apply", "--server-side", "-f", crd)).Error().NotTo(HaveOccurred())
		}
		Expect(kubectl("wait", "--for=condition=Established", "crd/"+serviceMonitorCRD, "crd/"+prometheusRuleCRD, "--timeout=1m")).Error().NotTo(HaveOccurred())
	})

	AfterEach(func() {
		if CurrentSpecReport().Failed() {
			dumpDiagnostics(CurrentSpecReport().LeafNodeText)
		}
	})

	AfterAll(func() {
		if os.Getenv("E2E_KEEP") != "" {
			return
		}
		By("cleaning up the release, the test namespace and the CRD")
		_, _ = helm("uninstall", release, "-n", systemNamespace, "--wait", "--ignore-not-found")
		_, _ = kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait", "--timeout=2m")
		_, _ = kubectl("delete", "crd", "records.recbuf.dev", serviceMonitorCRD, prometheusRuleCRD, "--ignore-not-found", "--timeout=1m")
		_, _ = kubectl("delete", "namespace", systemNamespace, "--ignore-not-found", "--timeout=2m")
	})

	It("installs the chart with its development NATS server", func() {
		By("helm install with nats.enabled=true, both ServiceMonitors, NetworkPolicies and a 2 s report interval")
		args := []string{"upgrade", "--install", release, "charts/recbuf", "-n", systemNamespace, "--create-namespace",
			"--set", "nats.enabled=true", "--set", "reports.interval=2s", "--wait", "--timeout", "3m",
			"--set", "networkPolicy.enabled=true",
			"--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.bufferServiceMonitor.enabled=true",
			"--set", "metrics.reader.serviceAccount.name=" + metricsScraper, "--set", "metrics.reader.serviceAccount.namespace=" + namespace}
		args = append(args, imageValues("image", managerImage)...)
		args = append(args, imageValues("bufferImage", sidecarImage)...)
		args = append(args, imageValues("nats.image", natsImage)...)
		Expect(helm(args...)).Error().NotTo(HaveOccurred())

		By("waiting for the manager and NATS to be available")
		Eventually(verifyDeploymentAvailable(systemNamespace, "recbuf-manager")).Should(Succeed())
		Eventually(verifyDeploymentAvailable(systemNamespace, "recbuf-nats")).Should(Succeed())
		By("checking that the chart installed the Record CRD and the ServiceMonitors")
		Expect(kubectl("get", "crd", "records.recbuf.dev")).Error().NotTo(HaveOccurred())
		Expect(kubectl("get", "servicemonitor", "recbuf-manager", "recbuf-buffers", "-n", systemNamespace)).Error().NotTo(HaveOccurred())
	})

	It("makes every sample Record Ready with live counters in kubectl get records", func() {
		By("applying the three sample Records and the edge simulator")
		Expect(kubectl("apply", "-k", "config/samples", "-n", namespace)).Error().NotTo(HaveOccurred())
		Expect(kubectl("apply", "-k", "config/simulator", "-n", namespace)).Error().NotTo(HaveOccurred())
		// config/simulator names recbuf/edgesim:dev; a run with its own tag
		// (EDGESIM_IMG) has loaded only that one.
		Expect(kubectl("set", "image", "deployment/edgesim", "edgesim="+edgesimImage, "-n", namespace)).Error().NotTo(HaveOccurred())

		By("waiting for every Record to be Ready with its endpoint in status")
		for _, name := range samples {
			Eventually(verifyRecordReady(name)).WithTimeout(3 * time.Minute).Should(Succeed())
		}

		By("reading the printer columns of kubectl get records twice: counters move")
		var first map[string]map[string]string
		Eventually(func(g Gomega) {
			first = verifyPrinterColumns(g)
			for _, name := range samples {
				g.Expect(strconv.Atoi(first[name]["PRODUCED"])).To(BeNumerically(">", 0), "PRODUCED of %s", name)
			}
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			now := verifyPrinterColumns(g)
			for _, name := range samples {
				was, _ := strconv.Atoi(first[name]["PRODUCED"])
				g.Expect(strconv.Atoi(now[name]["PRODUCED"])).To(BeNumerically(">", was), "PRODUCED of %s", name)
			}
		}).Should(Succeed())

		By("checking that status.pods names each Record's running buffer pod, connected to NATS")
		for _, name := range samples {
			Eventually(verifyPodsInStatus(name)).Should(Succeed())
		}

		By("checking that the buffers' ServiceMonitor selects every sample Record's Service")
		Eventually(verifyBufferServiceMonitorSelects(samples)).Should(Succeed())

		By("scraping the manager's metrics through its Service over HTTPS with a token allowed to get /metrics, and a buffer pod's")
		Eventually(verifyManagerMetrics("controller_runtime_reconcile_total")).Should(Succeed())
		Eventually(verifyManagerMetrics(
			fmt.Sprintf(`recbuf_record_ready_status{condition="True",name=%q,namespace=%q} 1`, ringRecord, namespace))).Should(Succeed())
		Eventually(verifyMetrics(namespace, ringRecord+"-recbuf", "metrics", "recbuf_nats_connected")).Should(Succeed())
	})

	It("streams the SpmcRing Record in order to a consumer pod through its Service", func() {
		summary := runConsumer("ring-consumer", 2*time.Minute,
			"stream", endpoint(ringRecord), "--count=100", "--duration=90s", "--quiet")
		Expect(number(summary, "values")).To(BeNumerically("==", 100), "values received")
		Expect(summary).To(HaveKeyWithValue("ordered", true), "sequence numbers and device sequences grow, no gap")
		Expect(number(summary, "lagEvents")).To(BeZero(), "a fast consumer never lags")
	})

	It("reports a deliberately slow consumer's lag in the SpmcRing Record's status", func() {
		// Socket buffers absorb megabytes before the buffer process sees a
		// consumer fall behind: this one stops reading for 20 s after its
		// first value while a burst larger than the ring and those buffers
		// is published, then reads on until it is told of its first lag.
		By("starting a slow consumer that stalls for 20 s after its first value")
		_, _ = kubectl("delete", "pod", "slow-consumer", "-n", namespace, "--ignore-not-found", "--wait")
		Expect(kubectlApply(consumerPod("slow-consumer",
			"stream", endpoint(ringRecord), "--stall=20s", "--stall-after=1", "--until-lag=1", "--duration=150s", "--quiet",
		))).Error().NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			g.Expect(kubectl("get", "pod", "slow-consumer", "-n", namespace, "-o", "jsonpath={.status.phase}")).To(Equal("Running"))
		}).Should(Succeed())
		// The pod may run before its stream is open; the buffer counts it
		// as a subscriber once it is.
		Eventually(func(g Gomega) {
			g.Expect(getRecord(g, ringRecord).Status.Subscribers).To(BeNumerically(">=", 1))
		}).Should(Succeed())

		By("publishing a burst of 20000 1 KiB telemetry readings, far more than the ring and the socket buffers hold")
		_, _ = kubectl("delete", "job", "telemetry-burst", "-n", namespace, "--ignore-not-found", "--wait")
		Expect(kubectlApply(edgesimJob("telemetry-burst", "--telemetry-subject=devices.telemetry",
			"--state-subject=", "--command-subject=", "--rate=0", "--count=20000", "--pad=1000"))).Error().NotTo(HaveOccurred())

		By("checking that the consumer was told exactly what it missed")
		Eventually(verifyPodSucceeded("slow-consumer")).WithTimeout(3 * time.Minute).Should(Succeed())
		summary := podSummary("slow-consumer")
		Expect(number(summary, "lagEvents")).To(BeNumerically(">=", 1))
		missed := number(summary, "missed")
		Expect(missed).To(BeNumerically(">", 0))
		// (Device sequences interleave: the burst's devices share names
		// with the simulator's.)
		Expect(number(summary, "outOfOrder")).To(BeZero(), "sequence numbers grow")
		Expect(number(summary, "unannounced")).To(BeZero(), "every gap was announced by a lag event of its size")

		By("checking that the Record's status shows the lag")
		Eventually(func(g Gomega) {
			r := getRecord(g, ringRecord)
			g.Expect(r.Status.LagEvents).To(BeNumerically(">=", 1))
			g.Expect(r.Status.LaggedValues).To(BeNumerically(">=", missed))
			g.Expect(verifyPrinterColumns(g)[ringRecord]["LAG"]).NotTo(Or(BeEmpty(), Equal("0"), Equal("<none>")))
		}).Should(Succeed())
	})

	It("holds the sample ring within its byte budget under 400 values of 1 MiB, without a restart", func() {
		before := snapshotBuffer(Default, ringRecord)
		var produced int64
		Eventually(func(g Gomega) { produced = getRecord(g, ringRecord).Status.Produced }).Should(Succeed())

		By("publishing 400 telemetry readings of about 1 MiB each: 400 MiB into a ring of 1024 values within 64 MiB")
		_, _ = kubectl("delete", "job", "telemetry-large", "-n", namespace, "--ignore-not-found", "--wait")
		Expect(kubectlApply(edgesimJob("telemetry-large", "--telemetry-subject=devices.telemetry", "--device-prefix=large",
			"--devices=1", "--state-subject=", "--command-subject=", "--rate=0", "--count=400", "--pad=1040000"))).Error().NotTo(HaveOccurred())

		By("checking that the ring took all of them in, evicting by bytes, and counted the evictions")
		Eventually(func(g Gomega) {
			r := getRecord(g, ringRecord)
			g.Expect(r.Status.Produced).To(BeNumerically(">=", produced+400))
			g.Expect(r.Status.Dropped).To(BeZero(), "no reading refused as oversized")
			g.Expect(r.Status.Evicted).To(BeNumerically(">=", 400-64), "values the byte budget pushed out")
		}).WithTimeout(3 * time.Minute).Should(Succeed())
		var info struct {
			Occupancy int   `json:"occupancy"`
			Bytes     int64 `json:"bytes"`
			MaxBytes  int64 `json:"maxBytes"`
		}
		out, err := kubectl("get", "--raw", fmt.Sprintf("/api/v1/namespaces/%s/services/http:%s-recbuf:http/proxy/v1/records/%s", namespace, ringRecord, ringRecord))
		Expect(err).NotTo(HaveOccurred())
		Expect(json.Unmarshal([]byte(out), &info)).To(Succeed(), "record info %s", out)
		_, _ = fmt.Fprintf(GinkgoWriter, "ring after 400 x 1 MiB: %s\n", out)
		Expect(info.MaxBytes).To(BeNumerically("==", 64<<20), "the sample's maxBytes")
		Expect(info.Bytes).To(BeNumerically("<=", info.MaxBytes))
		// The simulator's small readings share the ring: the budget, not a
		// count of large values, is what is full.
		Expect(info.Bytes).To(BeNumerically(">", info.MaxBytes-(1<<20)), "the budget is used up to less than one value")

		By("checking that the buffer pod was not restarted (no OOM kill)")
		after := snapshotBuffer(Default, ringRecord)
		Expect(after.pods).To(Equal(before.pods), "the same pods, restartCount unchanged")
		for name, p := range after.pods {
			Expect(p.Restarts).To(BeZero(), "restarts of %s", name)
		}
	})

	It("counts Mailbox overwrites under a fast producer and a slow taker", func() {
		var before int64
		Eventually(func(g Gomega) { before = getRecord(g, mailRecord).Status.Overwrites }).Should(Succeed())

		By("taking one command every 2 s while the simulator sends 10 a second")
		summary := runConsumer("slow-taker", 2*time.Minute,
			"take", endpoint(mailRecord), "--count=3", "--interval=2s", "--timeout=10s", "--quiet")
		Expect(number(summary, "taken")).To(BeNumerically("==", 3))

		By("checking that the Record's status counts the overwritten commands")
		Eventually(func(g Gomega) {
			r := getRecord(g, mailRecord)
			g.Expect(r.Status.Overwrites).To(BeNumerically(">", before))
			g.Expect(r.Status.Delivered).To(BeNumerically(">=", 3))
			g.Expect(strconv.Atoi(verifyPrinterColumns(g)[mailRecord]["OVERWRITES"])).To(BeNumerically(">", 0))
		}).Should(Succeed())
	})

	It("serves the newest value of the SingleLatest Record", func() {
		By("stopping the simulator, so that the newest value stays put")
		Expect(kubectl("scale", "deployment", "edgesim", "-n", namespace, "--replicas=0")).Error().NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			g.Expect(kubectl("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=edgesim", "-o", "name")).To(BeEmpty())
		}).Should(Succeed())

		By("reading /latest through the Service: its sequence number is the count of values taken in")
		Eventually(func(g Gomega) {
			out, err := kubectl("get", "--raw", fmt.Sprintf(
				"/api/v1/namespaces/%s/services/http:%s-recbuf:http/proxy/v1/records/%s/latest", namespace, latestRecord, latestRecord))
			g.Expect(err).NotTo(HaveOccurred())
			var latest struct {
				Seq    uint64 `json:"seq"`
				Device string `json:"device"`
			}
			g.Expect(json.Unmarshal([]byte(out), &latest)).To(Succeed(), "latest value %s", out)
			g.Expect(latest.Device).To(HavePrefix("dev-"))
			g.Expect(latest.Seq).To(BeNumerically("==", getRecord(g, latestRecord).Status.Produced),
				"the newest value's sequence number equals the Record's produced counter")
		}).Should(Succeed())

		By("checking that a consumer pod gets that value first")
		summary := runConsumer("latest-consumer", 2*time.Minute, "stream", endpoint(latestRecord), "--count=1", "--duration=60s", "--quiet")
		Expect(number(summary, "firstSeq")).To(BeNumerically("==", getRecord(Default, latestRecord).Status.Produced))

		By("restarting the simulator")
		Expect(kubectl("scale", "deployment", "edgesim", "-n", namespace, "--replicas=1")).Error().NotTo(HaveOccurred())
		Eventually(verifyDeploymentAvailable(namespace, "edgesim")).Should(Succeed())
	})

	It("refuses an invalid Record at kubectl apply with the CEL message", func() {
		for _, tc := range []struct{ buffer, message string }{
			{"{type: SpmcRing}", "spec.buffer.capacity is required when spec.buffer.type is SpmcRing"},
			{"{type: Mailbox, capacity: 8}", "spec.buffer.capacity is forbidden unless spec.buffer.type is SpmcRing"},
		} {
			By("applying a Record with buffer " + tc.buffer)
			_, err := kubectlApply(fmt.Sprintf(`apiVersion: recbuf.dev/v1alpha1
kind: Record
metadata: {name: invalid, namespace: %s}
spec:
  buffer: %s
`, namespace, tc.buffer))
			Expect(err).To(MatchError(ContainSubstring(tc.message)))
			Expect(kubectl("get", "record", "invalid", "-n", namespace)).Error().To(Satisfy(notFound))
		}
	})

	It("deletes a deleted Record's children by garbage collection", func() {
		By("creating Record gc-probe of two replicas and waiting for its children, a disruption budget among them")
		Expect(kubectlApply(fmt.Sprintf(`apiVersion: recbuf.dev/v1alpha1
kind: Record
metadata: {name: gc-probe, namespace: %s}
spec:
  replicas: 2
  buffer: {type: SingleLatest}
  source: {nats: {subject: e2e.gc-probe}}
`, namespace))).Error().NotTo(HaveOccurred())
		var uid string
		Eventually(func(g Gomega) { uid = getRecord(g, "gc-probe").Metadata.UID; g.Expect(uid).NotTo(BeEmpty()) }).Should(Succeed())
		children := []string{"configmap", "deployment", "service", "poddisruptionbudget"}
		for _, kind := range children {
			Eventually(func(g Gomega) {
				out, err := kubectl("get", kind, "gc-probe-recbuf", "-n", namespace,
					"-o", "jsonpath={.metadata.ownerReferences[?(@.controller==true)].uid}")
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(out).To(Equal(uid), "the %s is owned by the Record", kind)
			}).Should(Succeed())
		}

		By("deleting the Record; the garbage collector deletes its children")
		Expect(kubectl("delete", "record", "gc-probe", "-n", namespace, "--wait")).Error().NotTo(HaveOccurred())
		for _, kind := range children {
			Eventually(func(g Gomega) {
				_, err := kubectl("get", kind, "gc-probe-recbuf", "-n", namespace)
				g.Expect(notFound(err)).To(BeTrue(), "%s gc-probe-recbuf: %v", kind, err)
			}).Should(Succeed())
		}
	})

	It("rolls the manager on helm upgrade without losing Records or their counters", func() {
		type snapshot struct {
			uid      string
			produced int64
		}
		before := map[string]snapshot{}
		for _, name := range samples {
			Eventually(func(g Gomega) {
				r := getRecord(g, name)
				before[name] = snapshot{r.Metadata.UID, r.Status.Produced}
			}).Should(Succeed())
		}
		oldPods, err := kubectl("get", "pods", "-n", systemNamespace, "-l", "app.kubernetes.io/component=manager", "-o", "name")
		Expect(err).NotTo(HaveOccurred())

		By("helm upgrade with a changed value: reports.interval=3s")
		Expect(helm("upgrade", release, "charts/recbuf", "-n", systemNamespace, "--reuse-values",
			"--set", "reports.interval=3s", "--wait", "--timeout", "3m")).Error().NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			out, err := kubectl("get", "deployment", "recbuf-manager", "-n", systemNamespace, "-o", "jsonpath={.spec.template.spec.containers[0].args}")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(ContainSubstring("--report-interval=3s"))
			g.Expect(kubectl("get", "pods", "-n", systemNamespace, "-l", "app.kubernetes.io/component=manager", "-o", "name")).
				NotTo(Equal(oldPods), "a new manager pod replaced the old one")
		}).Should(Succeed())
		Eventually(verifyDeploymentAvailable(systemNamespace, "recbuf-manager")).Should(Succeed())

		By("checking that every Record survived, stays Ready, and its counters went on from where they were")
		for _, name := range samples {
			Eventually(func(g Gomega) {
				r := getRecord(g, name)
				g.Expect(r.Metadata.UID).To(Equal(before[name].uid), "Record %s is the same object", name)
				g.Expect(r.condition("Ready")).To(Equal("True"))
				g.Expect(r.Status.Produced).To(BeNumerically(">", before[name].produced), "produced of %s", name)
			}).Should(Succeed())
		}
	})

	It("leaves every buffer pod and what it holds alone on a helm upgrade of manager-only settings", func() {
		By("stopping the simulator, so that what each buffer holds stays put")
		Expect(kubectl("scale", "deployment", "edgesim", "-n", namespace, "--replicas=0")).Error().NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			g.Expect(kubectl("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=edgesim", "-o", "name")).To(BeEmpty())
		}).Should(Succeed())

		By("noting each Record's buffer pods (UID, restarts) and its buffer's lastSeq, once the status has caught up with it")
		before := map[string]bufferSnapshot{}
		for _, name := range samples {
			Eventually(func(g Gomega) {
				snap := snapshotBuffer(g, name)
				g.Expect(snap.lastSeq).To(BeNumerically("==", getRecord(g, name).Status.Produced),
					"%s: the last report came after the last value", name)
				before[name] = snap
			}).Should(Succeed())
			_, _ = fmt.Fprintf(GinkgoWriter, "before the upgrade: %s %s\n", name, before[name])
		}
		oldManager, err := kubectl("get", "pods", "-n", systemNamespace, "-l", "app.kubernetes.io/component=manager", "-o", "name")
		Expect(err).NotTo(HaveOccurred())

		By("helm upgrade --reuse-values of manager-only settings: reports.interval=4s and the manager's log level")
		Expect(helm("upgrade", release, "charts/recbuf", "-n", systemNamespace, "--reuse-values",
			"--set", "reports.interval=4s", "--set", "extraArgs={--zap-log-level=debug}", "--wait", "--timeout", "3m")).Error().NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			out, err := kubectl("get", "deployment", "recbuf-manager", "-n", systemNamespace, "-o", "jsonpath={.spec.template.spec.containers[0].args}")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(And(ContainSubstring("--report-interval=4s"), ContainSubstring("--zap-log-level=debug")))
			g.Expect(kubectl("get", "pods", "-n", systemNamespace, "-l", "app.kubernetes.io/component=manager", "-o", "name")).
				NotTo(Equal(oldManager), "a new manager pod replaced the old one")
		}).Should(Succeed())
		Eventually(verifyDeploymentAvailable(systemNamespace, "recbuf-manager")).Should(Succeed())

		By("waiting for each Record's ConfigMap, and then its buffer process, to take the new interval")
		for _, name := range samples {
			Eventually(func(g Gomega) {
				out, err := kubectl("get", "configmap", name+"-recbuf", "-n", namespace, "-o", `jsonpath={.data.reports\.json}`)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(out).To(ContainSubstring(`"interval":"4s"`))
			}).Should(Succeed())
		}
		// The kubelet updates a mounted ConfigMap within about a minute.
		for _, name := range samples {
			Eventually(verifyMetrics(namespace, name+"-recbuf", "metrics", "\nrecbuf_report_interval_seconds 4\n")).
				WithTimeout(4 * time.Minute).Should(Succeed())
		}

		By("checking that every buffer pod is the one it was, never restarted, and holds what it held")
		for _, name := range samples {
			after := snapshotBuffer(Default, name)
			_, _ = fmt.Fprintf(GinkgoWriter, "after the upgrade:  %s %s\n", name, after)
			Expect(after).To(Equal(before[name]), "buffer pods and lastSeq of %s", name)
		}

		By("checking that the Records stayed Ready, their pods connected, judged by the interval they report at")
		for _, name := range samples {
			Eventually(verifyRecordReady(name)).Should(Succeed())
			Eventually(verifyPodsInStatus(name)).Should(Succeed())
			Expect(getRecord(Default, name).condition("NATSConnected")).To(Equal("True"))
		}

		By("restarting the simulator")
		Expect(kubectl("scale", "deployment", "edgesim", "-n", namespace, "--replicas=1")).Error().NotTo(HaveOccurred())
		Eventually(verifyDeploymentAvailable(namespace, "edgesim")).Should(Succeed())
	})

	It("keeps the buffers readable through their Services while NATS is down, and resumes after", func() {
		By("waiting for fresh values in every Record")
		for _, name := range samples {
			Eventually(verifyRecordReady(name)).Should(Succeed())
		}
		pods := map[string]map[string]bufferPod{}
		for _, name := range samples {
			pods[name] = snapshotBuffer(Default, name).pods
		}

		By("scaling the development NATS server to zero")
		Expect(kubectl("scale", "deployment", "recbuf-nats", "-n", systemNamespace, "--replicas=0")).Error().NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			g.Expect(kubectl("get", "pods", "-n", systemNamespace, "-l", "app.kubernetes.io/component=nats", "-o", "name")).To(BeEmpty())
		}).Should(Succeed())
		for _, name := range samples {
			Eventually(verifyMetrics(namespace, name+"-recbuf", "metrics", "\nrecbuf_nats_connected 0\n")).Should(Succeed(),
				"the buffer process of %s sees NATS gone", name)
		}

		By("checking that the Records' status shows the outage")
		for _, name := range samples {
			Eventually(func(g Gomega) {
				r := getRecord(g, name)
				g.Expect(r.conditionReason("NATSConnected")).To(Equal("Unknown/ManagerDisconnected"))
				g.Expect(r.conditionReason("Reporting")).To(Equal("Unknown/ManagerDisconnected"))
			}).Should(Succeed())
		}
		during := map[string]bufferSnapshot{}
		for _, name := range samples {
			during[name] = snapshotBuffer(Default, name)
			_, _ = fmt.Fprintf(GinkgoWriter, "during the outage: %s %s\n", name, during[name])
		}

		By("checking that every buffer pod stayed ready, the same pod, without a restart")
		for _, name := range samples {
			Expect(during[name].pods).To(Equal(pods[name]), "buffer pods of %s", name)
			verifyBufferPodsReady(Default, name)
		}

		By("reading /latest of the SingleLatest Record through its Service: the newest value from before the outage")
		latest := readLatest(Default, latestRecord)
		Expect(latest.Seq).To(BeNumerically("==", during[latestRecord].lastSeq))

		By("streaming what the SpmcRing Record retains, oldest first, from a consumer pod through its Service")
		held := during[ringRecord]
		Expect(held.occupancy).To(BeNumerically(">", 0))
		summary := runConsumer("outage-consumer", 2*time.Minute, "stream", endpoint(ringRecord),
			"--from=oldest", fmt.Sprintf("--count=%d", held.occupancy), "--duration=90s", "--quiet")
		Expect(number(summary, "values")).To(BeNumerically("==", held.occupancy), "every value the ring holds")
		Expect(number(summary, "lastSeq")).To(BeNumerically("==", held.lastSeq))
		// (Device sequences interleave: the earlier burst's devices share
		// names with the simulator's.)
		Expect(number(summary, "outOfOrder")).To(BeZero(), "sequence numbers grow")
		Expect(number(summary, "unannounced")).To(BeZero(), "no gap")

		By("scaling NATS back to one")
		Expect(kubectl("scale", "deployment", "recbuf-nats", "-n", systemNamespace, "--replicas=1")).Error().NotTo(HaveOccurred())
		Eventually(verifyDeploymentAvailable(systemNamespace, "recbuf-nats")).Should(Succeed())

		By("checking that new values flow into every buffer, and the Records are Ready and connected again")
		for _, name := range samples {
			Eventually(func(g Gomega) {
				g.Expect(snapshotBuffer(g, name).lastSeq).To(BeNumerically(">", during[name].lastSeq), "new values in %s", name)
			}).Should(Succeed())
			Eventually(func(g Gomega) {
				verifyRecordReady(name)(g)
				g.Expect(getRecord(g, name).conditionReason("NATSConnected")).To(Equal("True/Connected"))
			}).Should(Succeed())
			Eventually(verifyPodsInStatus(name)).Should(Succeed())
			after := snapshotBuffer(Default, name)
			_, _ = fmt.Fprintf(GinkgoWriter, "after the outage:  %s %s\n", name, after)
			Expect(after.pods).To(Equal(pods[name]), "no buffer pod of %s restarted", name)
		}
	})

	mqttSpecs()
	managerMetricsSpecs()
	tokenAuthSpecs()
	networkPolicySpecs()
	Context("kubectl recbuf", pluginSpecs)
	monitoringSpecs()
	persistenceSpecs()
	failoverSpecs()
	sidecarSpecs()

	It("leaves no manager resources behind on helm uninstall", func() {
		Expect(helm("uninstall", release, "-n", systemNamespace, "--wait")).Error().NotTo(HaveOccurred())
		selector := "app.kubernetes.io/instance=" + release
		Eventually(func(g Gomega) {
			g.Expect(kubectl("get", "deployments,services,serviceaccounts,roles,rolebindings,pods,servicemonitors", "-n", systemNamespace,
				"-l", selector, "-o", "name")).To(BeEmpty())
			g.Expect(kubectl("get", "clusterroles,clusterrolebindings", "-l", selector, "-o", "name")).To(BeEmpty())
		}).Should(Succeed())
	})
})

// serviceMonitorCRD and prometheusRuleCRD are the Prometheus Operator's
// CRDs, which the suite installs (hack/prometheus-operator-crds.sh) so that
// the chart's ServiceMonitors and PrometheusRule meet a real API server.
const (
	serviceMonitorCRD = "servicemonitors.monitoring.coreos.com"
	prometheusRuleCRD = "prometheusrules.monitoring.coreos.com"
)

// verifyBufferServiceMonitorSelects checks that the chart's buffer
// ServiceMonitor selects the Service of each named Record, and that those
// Services have the port it scrapes.
func verifyBufferServiceMonitorSelects(records []string) func(Gomega) {
	return func(g Gomega) {
		var sm struct {
			Spec struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
				Endpoints []struct {
					Port string `json:"port"`
				} `json:"endpoints"`
			} `json:"spec"`
		}
		g.Expect(getJSON(&sm, "servicemonitor", "recbuf-buffers", "-n", systemNamespace)).To(Succeed())
		g.Expect(sm.Spec.Endpoints).To(HaveLen(1))
		var selector []string
		for k, v := range sm.Spec.Selector.MatchLabels {
			selector = append(selector, k+"="+v)
		}
		g.Expect(selector).NotTo(BeEmpty())
		out, err := kubectl("get", "services", "-n", namespace, "-l", strings.Join(selector, ","),
			"-o", `jsonpath={range .items[*]}{.metadata.name}:{.spec.ports[*].name}{"\n"}{end}`)
		g.Expect(err).NotTo(HaveOccurred())
		selected := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			name, ports, _ := strings.Cut(line, ":")
			selected[name] = ports
		}
		for _, r := range records {
			g.Expect(selected).To(HaveKey(r+"-recbuf"), "Services selected by the buffers' ServiceMonitor")
			g.Expect(strings.Fields(selected[r+"-recbuf"])).To(ContainElement(sm.Spec.Endpoints[0].Port), "ports of %s-recbuf", r)
		}
	}
}

// verifyDeploymentAvailable checks a Deployment's Available condition.
func verifyDeploymentAvailable(ns, name string) func(Gomega) {
	return func(g Gomega) {
		out, err := kubectl("get", "deployment", name, "-n", ns, "-o", `jsonpath={.status.conditions[?(@.type=="Available")].status}`)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out).To(Equal("True"), "deployment %s/%s available", ns, name)
	}
}

// verifyMetrics reads /metrics through a Service (the API server's proxy)
// and looks for a metric.
func verifyMetrics(ns, service, port, metric string) func(Gomega) {
	return func(g Gomega) {
		out, err := kubectl("get", "--raw", fmt.Sprintf("/api/v1/namespaces/%s/services/http:%s:%s/proxy/metrics", ns, service, port))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(out).To(ContainSubstring(metric), "metrics of service %s/%s", ns, service)
	}
}

// verifyRecordReady checks a Record's Ready condition and endpoint.
func verifyRecordReady(name string) func(Gomega) {
	return func(g Gomega) {
		r := getRecord(g, name)
		g.Expect(r.condition("Ready")).To(Equal("True"), "Record %s Ready; conditions %+v", name, r.Status.Conditions)
		g.Expect(r.observed("Ready")).To(Equal(r.Metadata.Generation), "Record %s Ready is about its current spec", name)
		g.Expect(r.Status.Endpoint).To(Equal(endpoint(name)))
	}
}

// verifyPodsInStatus checks that a Record's status.pods lists exactly its
// running buffer pods, each connected to NATS.
func verifyPodsInStatus(name string) func(Gomega) {
	return func(g Gomega) {
		out, err := kubectl("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=recbuf-buffer,app.kubernetes.io/instance="+name,
			"--field-selector=status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}")
		g.Expect(err).NotTo(HaveOccurred())
		running := strings.Fields(out)
		g.Expect(running).NotTo(BeEmpty(), "running buffer pods of %s", name)
		var listed []string
		for _, p := range getRecord(g, name).Status.Pods {
			g.Expect(p.Connected).To(BeTrue(), "pod %s of %s connected", p.Name, name)
			listed = append(listed, p.Name)
		}
		g.Expect(listed).To(ConsistOf(running), "status.pods of %s", name)
	}
}

// verifyPrinterColumns reads `kubectl get records` as a user does and
// returns each row's cells by column header. It checks the columns and that
// every sample is Ready.
func verifyPrinterColumns(g Gomega) map[string]map[string]string {
	out, err := kubectl("get", "records", "-n", namespace)
	g.Expect(err).NotTo(HaveOccurred())
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	g.Expect(lines).NotTo(BeEmpty())
	header := lines[0]
	columns := []string{"NAME", "TYPE", "CAPACITY", "READY", "PRODUCED", "LAG", "OVERWRITES", "AGE"}
	g.Expect(strings.Fields(header)).To(Equal(columns), "kubectl get records columns")
	// kubectl aligns cells under their headers; empty cells (CAPACITY of
	// a SingleLatest) make splitting on spaces unreliable.
	starts := make([]int, len(columns))
	for i, c := range columns {
		starts[i] = strings.Index(header, c)
	}
	rows := map[string]map[string]string{}
	for _, line := range lines[1:] {
		row := map[string]string{}
		for i, c := range columns {
			end := len(line)
			if i+1 < len(columns) {
				end = min(starts[i+1], len(line))
			}
			if starts[i] < end {
				row[c] = strings.TrimSpace(line[starts[i]:end])
			}
		}
		rows[row["NAME"]] = row
	}
	_, _ = fmt.Fprintf(GinkgoWriter, "%s", out)
	want := map[string][2]string{ringRecord: {"SpmcRing", "1024"}, latestRecord: {"SingleLatest", ""}, mailRecord: {"Mailbox", ""}}
	for name, tc := range want {
		g.Expect(rows).To(HaveKey(name))
		g.Expect(rows[name]["TYPE"]).To(Equal(tc[0]))
		g.Expect(rows[name]["CAPACITY"]).To(Equal(tc[1]))
		g.Expect(rows[name]["READY"]).To(Equal("True"))
	}
	return rows
}

// bufferPod is what tells a buffer pod from its replacement: its UID, and
// how often its buffer container restarted.
type bufferPod struct {
	UID      string
	Restarts int
}

// bufferSnapshot is a Record's buffer pods and what its buffer holds.
type bufferSnapshot struct {
	pods      map[string]bufferPod
	lastSeq   uint64
	occupancy uint64
}

func (b bufferSnapshot) String() string {
	return fmt.Sprintf("pods %v lastSeq %d occupancy %d", b.pods, b.lastSeq, b.occupancy)
}

// snapshotBuffer reads a Record's running buffer pods and, through its
// Service, its buffer's lastSeq and occupancy (GET /v1/records/NAME).
func snapshotBuffer(g Gomega, name string) bufferSnapshot {
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
				UID  string `json:"uid"`
			} `json:"metadata"`
			Status struct {
				ContainerStatuses []struct {
					Name         string `json:"name"`
					RestartCount int    `json:"restartCount"`
				} `json:"containerStatuses"`
			} `json:"status"`
		} `json:"items"`
	}
	g.Expect(getJSON(&list, "pods", "-n", namespace, "-l", "app.kubernetes.io/name=recbuf-buffer,app.kubernetes.io/instance="+name,
		"--field-selector=status.phase=Running")).To(Succeed())
	snap := bufferSnapshot{pods: map[string]bufferPod{}}
	for _, p := range list.Items {
		bp := bufferPod{UID: p.Metadata.UID}
		for _, c := range p.Status.ContainerStatuses {
			if c.Name == "buffer" {
				bp.Restarts = c.RestartCount
			}
		}
		snap.pods[p.Metadata.Name] = bp
	}
	g.Expect(snap.pods).NotTo(BeEmpty(), "running buffer pods of %s", name)
	out, err := kubectl("get", "--raw", fmt.Sprintf("/api/v1/namespaces/%s/services/http:%s-recbuf:http/proxy/v1/records/%s", namespace, name, name))
	g.Expect(err).NotTo(HaveOccurred())
	var info struct {
		LastSeq   uint64 `json:"lastSeq"`
		Occupancy uint64 `json:"occupancy"`
	}
	g.Expect(json.Unmarshal([]byte(out), &info)).To(Succeed(), "record info %s", out)
	snap.lastSeq, snap.occupancy = info.LastSeq, info.Occupancy
	return snap
}

// latestValue is the part of a /latest answer the suite reads.
type latestValue struct {
	Seq    uint64 `json:"seq"`
	Device string `json:"device"`
}

// readLatest reads a Record's /latest through its Service (the API
// server's proxy).
func readLatest(g Gomega, name string) latestValue {
	out, err := kubectl("get", "--raw", fmt.Sprintf(
		"/api/v1/namespaces/%s/services/http:%s-recbuf:http/proxy/v1/records/%s/latest", namespace, name, name))
	g.Expect(err).NotTo(HaveOccurred())
	var v latestValue
	g.Expect(json.Unmarshal([]byte(out), &v)).To(Succeed(), "latest value %s", out)
	return v
}

// verifyBufferPodsReady checks that a Record's buffer pods are all Ready,
// and so among its Service's endpoints.
func verifyBufferPodsReady(g Gomega, name string) {
	out, err := kubectl("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=recbuf-buffer,app.kubernetes.io/instance="+name,
		"-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
	g.Expect(err).NotTo(HaveOccurred())
	lines := strings.Fields(out)
	g.Expect(lines).NotTo(BeEmpty(), "buffer pods of %s", name)
	for _, l := range lines {
		g.Expect(l).To(HaveSuffix("=True"), "buffer pod of %s ready", name)
	}
	addrs, err := kubectl("get", "endpointslices", "-n", namespace, "-l", "kubernetes.io/service-name="+name+"-recbuf",
		"-o", `jsonpath={range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]}{"\n"}{end}`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(strings.Fields(addrs)).To(HaveLen(len(lines)), "ready endpoints of Service %s-recbuf", name)
}

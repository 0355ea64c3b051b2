//go:build e2e

package e2e

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The namespaces of the NetworkPolicy specs besides the Records' own:
// outsiderNamespace is any other tenant's, monitoringNamespace is where the
// chart's default networkPolicy.metricsNamespaceSelector says Prometheus runs.
const (
	outsiderNamespace   = "np-outsider"
	monitoringNamespace = "monitoring"
)

// probeTimeout is how long a probe waits for an answer. A connection the
// policy drops gets none: the probe times out.
const probeTimeout = 5 * time.Second

// networkPolicySpecs prove the Records' NetworkPolicies, which the chart
// was installed with (networkPolicy.enabled) and the cluster enforces
// (hack/kind.sh network-policy), on the SingleLatest sample: who reaches
// its consumer port and its metrics port, how spec.consumers.from changes
// that, garbage collection, and that turning the value off removes them.
func networkPolicySpecs() {
	It("keeps other namespaces off a Record's consumer port, and lets Prometheus's namespace reach its metrics port", func() {
		consumerURL := endpoint(latestRecord)
		metricsURL := fmt.Sprintf("http://%s-recbuf.%s.svc:9090/metrics", latestRecord, namespace)

		By("checking that every sample Record controls a NetworkPolicy on its buffer pods")
		for _, name := range samples {
			Eventually(verifyNetworkPolicy(name)).Should(Succeed())
		}

		By("creating namespace " + outsiderNamespace + " and namespace " + monitoringNamespace + " (the later specs use them too)")
		for _, ns := range []string{outsiderNamespace, monitoringNamespace} {
			Expect(kubectl("delete", "namespace", ns, "--ignore-not-found", "--wait", "--timeout=2m")).Error().NotTo(HaveOccurred())
			Expect(kubectl("create", "namespace", ns)).Error().NotTo(HaveOccurred())
		}

		By("a pod of the Record's own namespace reads its latest value")
		verifyProbe(namespace, "np-own", true, "latest", consumerURL)
		By("a pod of namespace " + outsiderNamespace + " cannot connect to the consumer port: its read times out")
		verifyProbe(outsiderNamespace, "np-outsider", false, "latest", consumerURL)
		By("a pod of namespace " + monitoringNamespace + " scrapes the buffer pod's metrics port")
		verifyProbe(monitoringNamespace, "np-prometheus", true, "get", metricsURL)
		By("a pod of namespace " + outsiderNamespace + " cannot reach the metrics port, nor one of " + monitoringNamespace + " the consumer port")
		verifyProbe(outsiderNamespace, "np-outsider-metrics", false, "get", metricsURL)
		verifyProbe(monitoringNamespace, "np-prometheus-consumer", false, "latest", consumerURL)

		By("naming namespace " + outsiderNamespace + " in spec.consumers.from: the policy follows")
		patch := fmt.Sprintf(`{"spec":{"consumers":{"from":[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":%q}}}]}}}`, outsiderNamespace)
		Expect(kubectl("patch", "record", latestRecord, "-n", namespace, "--type=merge", "-p", patch)).Error().NotTo(HaveOccurred())
		DeferCleanup(func() {
			_, _ = kubectl("patch", "record", latestRecord, "-n", namespace, "--type=merge", "-p", `{"spec":{"consumers":null}}`)
		})
		Eventually(func(g Gomega) {
			g.Expect(networkPolicyConsumerPeers(g, latestRecord)).To(ContainSubstring(outsiderNamespace))
		}).Should(Succeed())
		verifyProbeAfterChange(outsiderNamespace, "np-outsider-allowed", true, "latest", consumerURL)
		By("the Record's own namespace, no longer named, is now kept off")
		verifyProbeAfterChange(namespace, "np-own-refused", false, "latest", consumerURL)

		By("emptying spec.consumers: the Record's own namespace reads it again")
		Expect(kubectl("patch", "record", latestRecord, "-n", namespace, "--type=merge", "-p", `{"spec":{"consumers":null}}`)).Error().NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			g.Expect(networkPolicyConsumerPeers(g, latestRecord)).To(Equal(`[{"podSelector":{}}]`))
		}).Should(Succeed())
		verifyProbeAfterChange(namespace, "np-own-again", true, "latest", consumerURL)
	})

	It("deletes a deleted Record's NetworkPolicy by garbage collection", func() {
		By("creating Record np-probe and waiting for its NetworkPolicy")
		Expect(kubectlApply(fmt.Sprintf(`apiVersion: recbuf.dev/v1alpha1
kind: Record
metadata: {name: np-probe, namespace: %s}
spec:
  buffer: {type: SingleLatest}
  source: {nats: {subject: e2e.np-probe}}
`, namespace))).Error().NotTo(HaveOccurred())
		Eventually(verifyNetworkPolicy("np-probe")).Should(Succeed())

		By("deleting the Record; the garbage collector deletes its NetworkPolicy")
		Expect(kubectl("delete", "record", "np-probe", "-n", namespace, "--wait")).Error().NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			_, err := kubectl("get", "networkpolicy", "np-probe-recbuf", "-n", namespace)
			g.Expect(notFound(err)).To(BeTrue(), "networkpolicy np-probe-recbuf: %v", err)
		}).Should(Succeed())
	})

	It("removes the NetworkPolicies on helm upgrade with networkPolicy.enabled=false, and makes them again when it is true", func() {
		By("helm upgrade --reuse-values --set networkPolicy.enabled=false")
		Expect(helm("upgrade", release, "charts/recbuf", "-n", systemNamespace, "--reuse-values",
			"--set", "networkPolicy.enabled=false", "--wait", "--timeout", "3m")).Error().NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			g.Expect(kubectl("get", "networkpolicies", "-n", namespace, "-l", "app.kubernetes.io/managed-by=recbuf-manager", "-o", "name")).To(BeEmpty())
		}).Should(Succeed())
		By("a pod of namespace " + outsiderNamespace + " now reads the Record")
		DeferCleanup(func() {
			_, _ = kubectl("delete", "namespace", outsiderNamespace, monitoringNamespace, "--ignore-not-found", "--wait=false")
		})
		verifyProbeAfterChange(outsiderNamespace, "np-outsider-open", true, "latest", endpoint(latestRecord))

		By("helm upgrade --reuse-values --set networkPolicy.enabled=true: the policies are back")
		Expect(helm("upgrade", release, "charts/recbuf", "-n", systemNamespace, "--reuse-values",
			"--set", "networkPolicy.enabled=true", "--wait", "--timeout", "3m")).Error().NotTo(HaveOccurred())
		for _, name := range samples {
			Eventually(verifyNetworkPolicy(name)).Should(Succeed())
		}
		verifyProbeAfterChange(outsiderNamespace, "np-outsider-closed", false, "latest", endpoint(latestRecord))
	})
}

// verifyNetworkPolicy checks that the Record name controls the
// NetworkPolicy of its child name, which selects its buffer pods and
// admits the consumer port and the metrics port.
func verifyNetworkPolicy(name string) func(Gomega) {
	return func(g Gomega) {
		var np struct {
			Metadata struct {
				OwnerReferences []struct {
					Kind       string `json:"kind"`
					Name       string `json:"name"`
					Controller bool   `json:"controller"`
				} `json:"ownerReferences"`
			} `json:"metadata"`
			Spec struct {
				PodSelector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"podSelector"`
				PolicyTypes []string `json:"policyTypes"`
				Ingress     []struct {
					Ports []struct {
						Port int `json:"port"`
					} `json:"ports"`
				} `json:"ingress"`
			} `json:"spec"`
		}
		g.Expect(getJSON(&np, "networkpolicy", name+"-recbuf", "-n", namespace)).To(Succeed())
		g.Expect(np.Metadata.OwnerReferences).To(HaveLen(1))
		g.Expect(np.Metadata.OwnerReferences[0].Kind).To(Equal("Record"))
		g.Expect(np.Metadata.OwnerReferences[0].Name).To(Equal(name))
		g.Expect(np.Metadata.OwnerReferences[0].Controller).To(BeTrue())
		g.Expect(np.Spec.PodSelector.MatchLabels).To(Equal(map[string]string{
			"app.kubernetes.io/name": "recbuf-buffer", "app.kubernetes.io/instance": name}))
		g.Expect(np.Spec.PolicyTypes).To(Equal([]string{"Ingress"}))
		var ports []int
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				ports = append(ports, p.Port)
			}
		}
		g.Expect(ports).To(Equal([]int{8080, 9090}), "the consumer port, then the metrics port")
	}
}

// networkPolicyConsumerPeers is the JSON of the peers a Record's
// NetworkPolicy admits to the consumer port.
func networkPolicyConsumerPeers(g Gomega, name string) string {
	out, err := kubectl("get", "networkpolicy", name+"-recbuf", "-n", namespace, "-o", "jsonpath={.spec.ingress[0].from}")
	g.Expect(err).NotTo(HaveOccurred())
	return out
}

// verifyProbe runs recbufctl COMMAND URL once in a pod of ns and checks
// that it got an answer (wantOK) or timed out: a dropped connection, not a
// refused one or an error answer.
func verifyProbe(ns, name string, wantOK bool, command, url string) {
	GinkgoHelper()
	checkProbe(Default, ns, name, wantOK, command, url)
}

// verifyProbeAfterChange is verifyProbe right after a policy changed: the
// agent programs a change within about a second, so a probe that started
// before is run again, within a deadline.
func verifyProbeAfterChange(ns, name string, wantOK bool, command, url string) {
	GinkgoHelper()
	Eventually(func(g Gomega) { checkProbe(g, ns, name, wantOK, command, url) }).WithTimeout(time.Minute).Should(Succeed())
}

func checkProbe(g Gomega, ns, name string, wantOK bool, command, url string) {
	_, _ = kubectl("delete", "pod", name, "-n", ns, "--ignore-not-found", "--wait")
	g.Expect(kubectlApply(probePod(ns, name, command, url, "--timeout="+probeTimeout.String()))).Error().NotTo(HaveOccurred())
	var phase string
	g.Eventually(func(g Gomega) {
		out, err := kubectl("get", "pod", name, "-n", ns, "-o", "jsonpath={.status.phase}")
		g.Expect(err).NotTo(HaveOccurred())
		phase = out
		g.Expect(phase).To(BeElementOf("Succeeded", "Failed"), "pod %s/%s has finished", ns, name)
	}).Should(Succeed())
	logs, err := kubectl("logs", name, "-n", ns)
	g.Expect(err).NotTo(HaveOccurred())
	_, _ = fmt.Fprintf(GinkgoWriter, "probe %s/%s %s %s: %s\n%s", ns, name, command, url, phase, logs)
	_, _ = kubectl("delete", "pod", name, "-n", ns, "--ignore-not-found", "--wait=false")
	if wantOK {
		g.Expect(phase).To(Equal("Succeeded"), "pod %s/%s reached %s:\n%s", ns, name, url, logs)
	} else {
		g.Expect(phase).To(Equal("Failed"), "pod %s/%s was kept off %s:\n%s", ns, name, url, logs)
		g.Expect(logs).To(Or(ContainSubstring("deadline exceeded"), ContainSubstring("i/o timeout")),
			"the connection was dropped, so the probe timed out")
	}
}

// probePod is a pod of ns that runs recbufctl once.
func probePod(ns, name string, args ...string) string {
	return recbufctlPod{namespace: ns, name: name, label: "e2e-probe", grace: 1}.manifest(args...)
}

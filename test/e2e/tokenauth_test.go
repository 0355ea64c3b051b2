//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// guardedRecord is the Mailbox Record whose consumers authenticate.
const guardedRecord = "guarded"

// guardedAudience is the audience of guardedRecord's tokens: each Record
// has its own, recbuf.dev/NAMESPACE/NAME (spelled out here rather than
// computed by the code under test).
const guardedAudience = "recbuf.dev/" + namespace + "/" + guardedRecord

// tokenConsumerPod is consumerPod run as the ServiceAccount sa, with a
// projected token of audience aud at tokenMount/token (no token when sa
// is empty).
func tokenConsumerPod(name, sa, aud string, args ...string) string {
	return recbufctlPod{namespace: namespace, name: name, label: "e2e-consumer", serviceAccount: sa, audience: aud, grace: 5}.manifest(args...)
}

// runTokenConsumer runs recbufctl once as sa with a token for
// guardedRecord (see tokenConsumerPod) and returns whether it succeeded
// and its output.
func runTokenConsumer(name, sa string, args ...string) (bool, string) {
	GinkgoHelper()
	return runTokenConsumerFor(name, sa, guardedAudience, args...)
}

// runTokenConsumerFor is runTokenConsumer with a token of audience aud.
func runTokenConsumerFor(name, sa, aud string, args ...string) (bool, string) {
	GinkgoHelper()
	_, _ = kubectl("delete", "pod", name, "-n", namespace, "--ignore-not-found", "--wait")
	Expect(kubectlApply(tokenConsumerPod(name, sa, aud, args...))).Error().NotTo(HaveOccurred())
	var phase string
	Eventually(func(g Gomega) {
		var err error
		phase, err = kubectl("get", "pod", name, "-n", namespace, "-o", "jsonpath={.status.phase}")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(phase).To(BeElementOf("Succeeded", "Failed"), "pod %s finished", name)
	}).WithTimeout(2 * time.Minute).Should(Succeed())
	logs, err := kubectl("logs", name, "-n", namespace)
	Expect(err).NotTo(HaveOccurred())
	_, _ = fmt.Fprintf(GinkgoWriter, "pod %s (%s): %s\n", name, phase, logs)
	return phase == "Succeeded", logs
}

// verifyRefused checks that recbufctl, run as sa with a token for
// guardedRecord, is refused with status.
func verifyRefused(name, sa string, status int, args ...string) {
	GinkgoHelper()
	verifyRefusedFor(name, sa, guardedAudience, status, args...)
}

// verifyRefusedFor is verifyRefused with a token of audience aud.
func verifyRefusedFor(name, sa, aud string, status int, args ...string) {
	GinkgoHelper()
	ok, logs := runTokenConsumerFor(name, sa, aud, args...)
	Expect(ok).To(BeFalse(), "pod %s succeeded: %s", name, logs)
	Expect(logs).To(ContainSubstring(fmt.Sprintf("http status %d", status)), "pod %s", name)
}

// tokenAuthSpecs check spec.consumers.authentication ServiceAccountToken
// on a real cluster: the buffer pods' identity, made by the manager, the
// consumers' projected tokens and RBAC, and the binding's cleanup.
func tokenAuthSpecs() {
	It("asks the consumers of a Record with authentication for a ServiceAccount token with the verb of what they do", func() {
		By("applying Mailbox Record " + guardedRecord + " with spec.consumers.authentication ServiceAccountToken")
		Expect(kubectlApply(fmt.Sprintf(`apiVersion: recbuf.dev/v1alpha1
kind: Record
metadata: {name: %s, namespace: %s}
spec:
  buffer: {type: Mailbox}
  source: {nats: {subject: e2e.guarded.commands}}
  consumers: {authentication: ServiceAccountToken}
`, guardedRecord, namespace))).Error().NotTo(HaveOccurred())
		Eventually(verifyRecordReady(guardedRecord)).WithTimeout(3 * time.Minute).Should(Succeed())

		By("checking that its buffer pods run as its own ServiceAccount, bound to system:auth-delegator")
		binding := "recbuf-buffer:" + namespace + ":" + guardedRecord
		Expect(kubectl("get", "deployment", guardedRecord+"-recbuf", "-n", namespace, "-o",
			"jsonpath={.spec.template.spec.serviceAccountName} {.spec.template.spec.automountServiceAccountToken}")).To(Equal(guardedRecord + "-recbuf true"))
		Expect(kubectl("get", "clusterrolebinding", binding, "-o",
			"jsonpath={.roleRef.name} {.subjects[0].namespace}/{.subjects[0].name}")).To(Equal("system:auth-delegator " + namespace + "/" + guardedRecord + "-recbuf"))

		By("creating consumers bound to the chart's ClusterRoles: reader (records/consume get), taker (records/take create), and stranger (none)")
		Expect(kubectlApply(fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: %[1]s}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: taker, namespace: %[1]s}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: stranger, namespace: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: recbuf-record-consumer}
subjects: [{kind: ServiceAccount, name: reader, namespace: %[1]s}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: taker, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: recbuf-record-taker}
subjects: [{kind: ServiceAccount, name: taker, namespace: %[1]s}]
`, namespace))).Error().NotTo(HaveOccurred())

		By("publishing one command")
		_, _ = kubectl("delete", "job", "guarded-command", "-n", namespace, "--ignore-not-found", "--wait")
		Expect(kubectlApply(edgesimJob("guarded-command", "--telemetry-subject=", "--state-subject=",
			"--command-subject=e2e.guarded.commands", "--rate=0", "--count=1"))).Error().NotTo(HaveOccurred())

		url := endpoint(guardedRecord)
		tokenFile := "--token-file=" + tokenMount + "/token"
		By("reading the pending command as reader, with its projected token")
		Eventually(func(g Gomega) {
			ok, logs := runTokenConsumer("reader-latest", "reader", "latest", url, tokenFile)
			g.Expect(ok).To(BeTrue(), "reader's latest: %s", logs)
			g.Expect(logs).To(ContainSubstring(`"event":"value"`))
		}).WithTimeout(3 * time.Minute).Should(Succeed())

		By("refusing a consumer without a token (401), a ServiceAccount without a Role (403), and a reader's take (403)")
		verifyRefused("anonymous-latest", "", 401, "latest", url)
		verifyRefused("stranger-latest", "stranger", 403, "latest", url, tokenFile)
		verifyRefused("reader-take", "reader", 403, "take", url, tokenFile, "--timeout=0s")
		verifyRefused("reader-stream", "reader", 403, "stream", url, tokenFile, "--count=1", "--duration=10s")

		By("refusing a reader's token for another Record, and one with the audience recbuf.dev that every Record shared before (401)")
		verifyRefusedFor("reader-other-record", "reader", "recbuf.dev/"+namespace+"/telemetry", 401, "latest", url, tokenFile)
		verifyRefusedFor("reader-shared-audience", "reader", "recbuf.dev", 401, "latest", url, tokenFile)

		By("taking the command as taker")
		ok, logs := runTokenConsumer("taker-take", "taker", "take", url, tokenFile, "--timeout=10s")
		Expect(ok).To(BeTrue(), "taker's take: %s", logs)
		Expect(logs).To(ContainSubstring(`"taken":1`))

		By("checking that the buffer pod counted the answers")
		Eventually(verifyMetrics(namespace, guardedRecord+"-recbuf", "metrics", `recbuf_consumer_auth_total{result="forbidden"}`)).Should(Succeed())

		By("deleting the Record: the manager deletes its ClusterRoleBinding, which no garbage collector does")
		Expect(kubectl("delete", "record", guardedRecord, "-n", namespace, "--wait")).Error().NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			out, err := kubectl("get", "clusterrolebindings", "-l", "recbuf.dev/record-namespace="+namespace, "-o", "name")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(strings.TrimSpace(out)).To(BeEmpty())
		}).Should(Succeed())
		_, _ = kubectl("delete", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=e2e-consumer", "--ignore-not-found")
		_, _ = kubectl("delete", "serviceaccounts,rolebindings", "reader", "taker", "stranger", "-n", namespace, "--ignore-not-found")
	})
}

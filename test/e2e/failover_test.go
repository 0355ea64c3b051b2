//go:build e2e

package e2e

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The persistent Records of failoverSpecs: a ring with two buffer pods and
// a Mailbox with one, both kept in the development NATS's JetStream.
const (
	failoverRing       = "durable-ring"
	failoverRingSubj   = "e2e.durable-ring"
	failoverValues     = 1500
	failoverMailbox    = "durable-commands"
	failoverMailboxSub = "e2e.durable-commands"
)

// failoverSpecs are the headline checks of durable Records: a consumer
// streams on through the Service while the buffer pod it reads from is
// killed, and a command published while the Mailbox has no pod is taken
// once it has one again.
func failoverSpecs() {
	It("streams a persistent ring on without loss, lag or reset while the buffer pod the consumer reads from is killed", func() {
		By("applying a persistent SpmcRing Record with two buffer pods")
		Expect(kubectlApply(fmt.Sprintf(`apiVersion: recbuf.dev/v1alpha1
kind: Record
metadata: {name: %s, namespace: %s}
spec:
  replicas: 2
  buffer: {type: SpmcRing, capacity: 10000}
  source: {nats: {subject: %s}}
  persistence: {storage: File}
`, failoverRing, namespace, failoverRingSubj))).Error().NotTo(HaveOccurred())
		Eventually(verifyRecordReady(failoverRing)).WithTimeout(3 * time.Minute).Should(Succeed())
		Eventually(func(g Gomega) { g.Expect(getRecord(g, failoverRing).Status.ReportingPods).To(BeNumerically("==", 2)) }).Should(Succeed())

		By(fmt.Sprintf("streaming from the oldest value through the Service while the simulator publishes %d values at 50/s", failoverValues))
		_, _ = kubectl("delete", "pod", "failover-consumer", "-n", namespace, "--ignore-not-found", "--wait")
		Expect(kubectlApply(consumerPod("failover-consumer", "stream", endpoint(failoverRing), "--from=oldest",
			fmt.Sprintf("--count=%d", failoverValues), "--duration=4m", "--quiet"))).Error().NotTo(HaveOccurred())
		_, _ = kubectl("delete", "job", "failover-values", "-n", namespace, "--ignore-not-found", "--wait")
		Expect(kubectlApply(edgesimJob("failover-values", "--telemetry-subject="+failoverRingSubj,
			"--state-subject=", "--command-subject=", "--devices=1", "--rate=50", fmt.Sprintf("--count=%d", failoverValues)))).Error().NotTo(HaveOccurred())

		By("finding the buffer pod the consumer reads from, once values flow")
		var victim string
		Eventually(func(g Gomega) {
			r := getRecord(g, failoverRing)
			g.Expect(r.Status.Pods).To(HaveLen(2))
			for _, p := range r.Status.Pods {
				g.Expect(p.Produced).To(BeNumerically(">=", 200), "values taken in by both pods: %+v", r.Status.Pods)
				if p.Subscribers > 0 {
					victim = p.Name
				}
			}
			g.Expect(victim).NotTo(BeEmpty(), "a pod with the consumer: %+v", r.Status.Pods)
		}).Should(Succeed())

		By("killing it with --grace-period=0 --force: " + victim)
		Expect(kubectl("delete", "pod", victim, "-n", namespace, "--grace-period=0", "--force")).Error().NotTo(HaveOccurred())

		By("checking that the consumer got every value once, in order, without lag or reset")
		Eventually(verifyPodSucceeded("failover-consumer")).WithTimeout(5 * time.Minute).Should(Succeed())
		summary := podSummary("failover-consumer")
		Expect(number(summary, "values")).To(BeNumerically("==", failoverValues))
		Expect(number(summary, "firstSeq")).To(BeNumerically("==", 1), "the stream's first value")
		Expect(number(summary, "lastSeq")).To(BeNumerically("==", failoverValues), "contiguous: the stream's numbers, the same on both pods")
		Expect(summary).To(HaveKeyWithValue("ordered", true))
		Expect(number(summary, "lagEvents")).To(BeZero())
		Expect(number(summary, "resets")).To(BeZero(), "the surviving pod numbers values as the killed one did")
		Expect(number(summary, "reconnects")).To(BeNumerically(">=", 1), "the consumer was cut off by the kill and resumed")

		Expect(kubectl("delete", "record", failoverRing, "-n", namespace, "--wait", "--timeout=1m")).Error().NotTo(HaveOccurred())
		_, _ = kubectl("delete", "job", "failover-values", "-n", namespace, "--ignore-not-found")
		_, _ = kubectl("delete", "pod", "failover-consumer", "-n", namespace, "--ignore-not-found")
	})

	It("hands out a command published while a persistent Mailbox had no pod once it has one again, and only once", func() {
		mailbox := func(replicas int) string {
			return fmt.Sprintf(`apiVersion: recbuf.dev/v1alpha1
kind: Record
metadata: {name: %s, namespace: %s}
spec:
  replicas: %d
  buffer: {type: Mailbox}
  source: {nats: {subject: %s}}
  persistence: {storage: File}
`, failoverMailbox, namespace, replicas, failoverMailboxSub)
		}
		streamMessages := func(g Gomega) int64 {
			var d durableStatus
			g.Expect(getJSON(&d, "record", failoverMailbox, "-n", namespace)).To(Succeed())
			g.Expect(d.Status.Stream).NotTo(BeNil())
			return d.Status.Stream.Messages
		}

		By("applying a persistent Mailbox Record with no buffer pod")
		Expect(kubectlApply(mailbox(0))).Error().NotTo(HaveOccurred())
		Eventually(streamMessages).Should(BeZero())

		By("publishing one command while no pod runs: the stream keeps it")
		_, _ = kubectl("delete", "job", "failover-command", "-n", namespace, "--ignore-not-found", "--wait")
		Expect(kubectlApply(edgesimJob("failover-command", "--command-subject="+failoverMailboxSub,
			"--telemetry-subject=", "--state-subject=", "--devices=1", "--rate=0", "--count=1"))).Error().NotTo(HaveOccurred())
		Eventually(streamMessages).Should(BeNumerically("==", 1))

		By("starting the buffer pod and taking the command")
		Expect(kubectlApply(mailbox(1))).Error().NotTo(HaveOccurred())
		Eventually(verifyRecordReady(failoverMailbox)).WithTimeout(3 * time.Minute).Should(Succeed())
		summary := runConsumer("failover-taker", 2*time.Minute, "take", endpoint(failoverMailbox), "--count=1", "--timeout=30s")
		Expect(number(summary, "taken")).To(BeNumerically("==", 1))

		By("checking that the take removed it from the stream, so that no restart or replica hands it out again")
		Eventually(streamMessages).Should(BeZero())

		Expect(kubectl("delete", "record", failoverMailbox, "-n", namespace, "--wait", "--timeout=1m")).Error().NotTo(HaveOccurred())
		_, _ = kubectl("delete", "job", "failover-command", "-n", namespace, "--ignore-not-found")
		_, _ = kubectl("delete", "pod", "failover-taker", "-n", namespace, "--ignore-not-found")
	})
}

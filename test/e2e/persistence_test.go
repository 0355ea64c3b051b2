//go:build e2e

package e2e

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// durableRecord is the persistent Record of persistenceSpecs, of no
// replicas: what is checked is the manager's side (the stream it owns in
// the development NATS's JetStream), not the buffer process's.
const (
	durableRecord  = "durable-probe"
	durableSubject = "e2e.durable-probe"
)

// durableStatus is what persistenceSpecs read of a Record.
type durableStatus struct {
	Metadata struct {
		Finalizers []string `json:"finalizers"`
	} `json:"metadata"`
	Status struct {
		Conditions []struct {
			Type, Status, Reason, Message string
		} `json:"conditions"`
		Stream *struct {
			Name          string `json:"name"`
			Messages      int64  `json:"messages"`
			FirstSequence int64  `json:"firstSequence"`
			LastSequence  int64  `json:"lastSequence"`
		} `json:"stream"`
	} `json:"status"`
}

func getDurable(g Gomega) *durableStatus {
	var d durableStatus
	g.Expect(getJSON(&d, "record", durableRecord, "-n", namespace)).To(Succeed())
	return &d
}

// verifyStream checks that the Record's stream is ready and holds messages
// values, from first to last.
func verifyStream(messages, first, last int64) func(Gomega) {
	return func(g Gomega) {
		d := getDurable(g)
		ready := ""
		for _, c := range d.Status.Conditions {
			if c.Type == "StreamReady" {
				ready = c.Status + "/" + c.Reason + ": " + c.Message
			}
		}
		g.Expect(ready).To(HavePrefix("True/StreamReady"))
		g.Expect(d.Status.Stream).NotTo(BeNil())
		g.Expect(d.Status.Stream.Name).To(Equal("recbuf_" + namespace + "_" + durableRecord))
		g.Expect([]int64{d.Status.Stream.Messages, d.Status.Stream.FirstSequence, d.Status.Stream.LastSequence}).
			To(Equal([]int64{messages, first, last}), "messages, first and last sequence")
	}
}

func applyDurable(capacity int) {
	GinkgoHelper()
	Expect(kubectlApply(fmt.Sprintf(`apiVersion: recbuf.dev/v1alpha1
kind: Record
metadata: {name: %s, namespace: %s}
spec:
  replicas: 0
  buffer: {type: SpmcRing, capacity: %d}
  source: {nats: {subject: %s}}
  persistence: {storage: File}
`, durableRecord, namespace, capacity, durableSubject))).Error().NotTo(HaveOccurred())
}

// persistenceSpecs are the specs of a Record kept in JetStream, as far as
// the manager is concerned.
func persistenceSpecs() {
	It("keeps a persistent Record's stream in the development NATS's JetStream, updates it in place and deletes it with the Record", func() {
		By("applying a persistent SpmcRing Record of capacity 16")
		applyDurable(16)
		Eventually(verifyStream(0, 0, 0)).Should(Succeed())
		Expect(getDurable(Default).Metadata.Finalizers).To(ContainElement("recbuf.dev/stream"), "the manager patched its finalizer in")

		By("publishing 5 values on its subject")
		_, _ = kubectl("delete", "job", "durable-values", "-n", namespace, "--ignore-not-found", "--wait")
		Expect(kubectlApply(edgesimJob("durable-values", "--telemetry-subject="+durableSubject,
			"--state-subject=", "--command-subject=", "--devices=1", "--rate=0", "--count=5"))).Error().NotTo(HaveOccurred())
		Eventually(verifyStream(5, 1, 5)).Should(Succeed())

		By("shrinking the capacity to 3: the stream keeps the newest 3")
		applyDurable(3)
		Eventually(verifyStream(3, 3, 5)).Should(Succeed())

		By("deleting the Record: the manager deletes the stream and lets the Record go")
		Expect(kubectl("delete", "record", durableRecord, "-n", namespace, "--wait", "--timeout=1m")).Error().NotTo(HaveOccurred())

		By("creating it again: its stream is a new, empty one")
		applyDurable(3)
		Eventually(verifyStream(0, 0, 0)).Should(Succeed())
		Expect(kubectl("delete", "record", durableRecord, "-n", namespace, "--wait", "--timeout=1m")).Error().NotTo(HaveOccurred())
		_, _ = kubectl("delete", "job", "durable-values", "-n", namespace, "--ignore-not-found")
	})
}

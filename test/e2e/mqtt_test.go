//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// mqttRecord gathers what MQTT gateways publish on gateways/<device>/telemetry;
// no sample Record and no simulator of the suite uses these subjects.
const (
	mqttRecord  = "mqtt-telemetry"
	mqttSubject = "gateways.*.telemetry"
)

// mqttSpecs are the specs of MQTT into a Record through the development
// NATS server's MQTT listener, from outside the cluster and from inside.
func mqttSpecs() {
	It("takes MQTT publishes from outside the cluster into a Record's stream, in order, with its counters moving", func() {
		mosquittoPub, err := exec.LookPath("mosquitto_pub")
		Expect(err).NotTo(HaveOccurred(), "mosquitto_pub (Debian: mosquitto-clients; .ci/run installs it)")

		By("applying a SpmcRing Record on " + mqttSubject)
		Expect(kubectlApply(fmt.Sprintf(`apiVersion: recbuf.dev/v1alpha1
kind: Record
metadata: {name: %s, namespace: %s}
spec:
  buffer: {type: SpmcRing, capacity: 256}
  source:
    nats: {subject: %q}
`, mqttRecord, namespace, mqttSubject))).Error().NotTo(HaveOccurred())
		Eventually(verifyRecordReady(mqttRecord)).WithTimeout(3 * time.Minute).Should(Succeed())

		By("port-forwarding the NATS Service's mqtt port to this machine")
		local := portForward(systemNamespace, "svc/recbuf-nats", "1883")

		const n = 50
		By(fmt.Sprintf("publishing %d numbered readings of device mcu-e2e with mosquitto_pub at QoS 1", n))
		var lines strings.Builder
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&lines, `{"device":"mcu-e2e","seq":%d,"reading":%d}`+"\n", i, 100+i)
		}
		Expect(run(lines.String(), nil, mosquittoPub, "-h", "127.0.0.1", "-p", local, "-V", "mqttv311", "-i", "e2e-gateway",
			"-q", "1", "-t", "gateways/mcu-e2e/telemetry", "-l")).Error().NotTo(HaveOccurred())

		By("waiting for the Record's status to count them")
		Eventually(func(g Gomega) {
			g.Expect(getRecord(g, mqttRecord).Status.Produced).To(BeNumerically("==", n))
		}).Should(Succeed())

		By("streaming them from the oldest through the Record's Service in a consumer pod (Server-Sent Events)")
		summary := runConsumer("mqtt-consumer", 2*time.Minute,
			"stream", endpoint(mqttRecord), "--from=oldest", fmt.Sprintf("--count=%d", n), "--duration=90s", "--quiet")
		Expect(number(summary, "values")).To(BeNumerically("==", n))
		Expect(number(summary, "firstSeq")).To(BeNumerically("==", 1))
		Expect(number(summary, "lastSeq")).To(BeNumerically("==", n))
		Expect(summary).To(HaveKeyWithValue("ordered", true), "sequence numbers and mcu-e2e's own numbers grow, no gap")

		By("publishing reading n+2 at QoS 2: delivered, and the one the device skipped counted as an upstream gap")
		Expect(run("", nil, mosquittoPub, "-h", "127.0.0.1", "-p", local, "-V", "mqttv311", "-i", "e2e-gateway-qos2",
			"-q", "2", "-t", "gateways/mcu-e2e/telemetry", "-m", fmt.Sprintf(`{"device":"mcu-e2e","seq":%d}`, n+2))).Error().NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			v := readLatestDevice(g, mqttRecord)
			g.Expect(v.Device).To(Equal("mcu-e2e"))
			g.Expect(v.DeviceSeq).To(BeNumerically("==", n+2))
			g.Expect(v.Subject).To(Equal("gateways.mcu-e2e.telemetry"))
		}).Should(Succeed())
		Eventually(verifyMetrics(namespace, mqttRecord+"-recbuf", "metrics",
			fmt.Sprintf(`recbuf_intake_upstream_gap_values_total{namespace=%q,record=%q} 1`, namespace, mqttRecord))).Should(Succeed())
		// Status is a sampled snapshot: wait for it too, so that the next
		// spec starts from a count that includes this value.
		Eventually(func(g Gomega) {
			g.Expect(getRecord(g, mqttRecord).Status.Produced).To(BeNumerically("==", n+1))
		}).Should(Succeed())
	})

	It("takes the edge simulator's MQTT publishes from inside the cluster into the same Record", func() {
		const was, n = 51, 30 // the previous spec's values
		By(fmt.Sprintf("running edgesim --protocol mqtt for %d readings of 3 devices", n))
		_, _ = kubectl("delete", "job", "edgesim-mqtt", "-n", namespace, "--ignore-not-found", "--wait")
		Expect(kubectlApply(edgesimJob("edgesim-mqtt", "--protocol=mqtt", "--mqtt-url=tcp://recbuf-nats.recbuf-system.svc:1883",
			"--telemetry-subject=gateways.{device}.telemetry", "--state-subject=", "--command-subject=",
			"--device-prefix=mqtt-sim", "--devices=3", fmt.Sprintf("--count=%d", n), "--rate=0"))).Error().NotTo(HaveOccurred())
		Expect(kubectl("wait", "--for=condition=Complete", "job/edgesim-mqtt", "-n", namespace, "--timeout=2m")).Error().NotTo(HaveOccurred())

		By("waiting for the Record's status to count them, with no upstream gap added")
		Eventually(func(g Gomega) {
			g.Expect(getRecord(g, mqttRecord).Status.Produced).To(BeNumerically("==", was+n))
		}).Should(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(readLatestDevice(g, mqttRecord).Device).To(HavePrefix("mqtt-sim-"))
		}).Should(Succeed())
		Eventually(verifyMetrics(namespace, mqttRecord+"-recbuf", "metrics",
			fmt.Sprintf(`recbuf_intake_upstream_gap_values_total{namespace=%q,record=%q} 1`, namespace, mqttRecord))).Should(Succeed())
		Expect(kubectl("delete", "record", mqttRecord, "-n", namespace, "--wait")).Error().NotTo(HaveOccurred())
	})
}

// deviceValue is the part of a /latest answer that names its device.
type deviceValue struct {
	Subject   string `json:"subject"`
	Device    string `json:"device"`
	DeviceSeq uint64 `json:"deviceSeq"`
}

// readLatestDevice reads a Record's /latest through its Service.
func readLatestDevice(g Gomega, name string) deviceValue {
	out, err := kubectl("get", "--raw", fmt.Sprintf(
		"/api/v1/namespaces/%s/services/http:%s-recbuf:http/proxy/v1/records/%s/latest", namespace, name, name))
	g.Expect(err).NotTo(HaveOccurred())
	var v deviceValue
	g.Expect(json.Unmarshal([]byte(out), &v)).To(Succeed(), "latest value %s", out)
	return v
}

// portForwardReady bounds the wait for kubectl port-forward to listen.
const portForwardReady = 30 * time.Second

// forwarding is kubectl port-forward's line naming the local port it
// listens on (on 127.0.0.1).
var forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) ->`)

// portForward runs kubectl port-forward from a free local port to a
// target's port until the spec ends, and returns the local port once
// kubectl listens on it.
func portForward(ns, target, port string) string {
	GinkgoHelper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "kubectl", "--context", kubeContext, "-n", ns, "port-forward", "--address", "127.0.0.1", target, ":"+port)
	stdout, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	cmd.Stderr = GinkgoWriter
	Expect(cmd.Start()).To(Succeed())
	DeferCleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	local := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			_, _ = fmt.Fprintln(GinkgoWriter, "port-forward:", sc.Text())
			if m := forwarding.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case local <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case p := <-local:
		return p
	case <-time.After(portForwardReady):
		Fail(fmt.Sprintf("kubectl port-forward %s %s: not listening within %s", target, port, portForwardReady))
	}
	return ""
}

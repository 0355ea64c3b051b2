//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// pluginSpecs run kubectl-recbuf from the machine that runs the suite, as
// a user runs it from a terminal: with the suite's kubeconfig context,
// through the API server, with no port-forward of its own.
func pluginSpecs() {
	var plugin string
	AfterAll(func() {
		if plugin != "" {
			_ = os.RemoveAll(filepath.Dir(plugin))
		}
	})

	It("builds kubectl-recbuf", func() {
		// Not GinkgoT().TempDir(): that goes with this spec, and the
		// binary is for the specs that follow.
		dir, err := os.MkdirTemp("", "kubectl-recbuf-e2e-")
		Expect(err).NotTo(HaveOccurred())
		plugin = filepath.Join(dir, "kubectl-recbuf")
		Expect(run("", []string{"CGO_ENABLED=0"}, "go", "build", "-o", plugin, "./cmd/kubectl-recbuf")).Error().NotTo(HaveOccurred())
	})

	It("streams the SpmcRing Record with a backfill of 5, then live values, from a terminal", func() {
		By("kubectl recbuf stream telemetry --from last=5 --count 8 -o json, timing the first value")
		lines, firstValue := runPluginStream(plugin, 2*time.Minute,
			"stream", ringRecord, "-n", namespace, "--from", "last=5", "--count", "8", "-o", "json")
		_, _ = fmt.Fprintf(GinkgoWriter, "kubectl recbuf stream: first value %s after the command started\n", firstValue.Round(time.Millisecond))
		AddReportEntry("kubectl recbuf stream: command to first value", firstValue.Round(time.Millisecond).String())

		Expect(lines).NotTo(BeEmpty())
		Expect(lines[0]).To(HaveKeyWithValue("event", "backfill"), "the first event says how many values are backfilled")
		Expect(number(lines[0], "count")).To(BeNumerically("==", 5), "the ring holds more than 5 values")
		last := uint64(number(lines[0], "lastSeq"))
		var seqs []uint64
		for _, l := range lines[1:] {
			Expect(l).To(HaveKeyWithValue("event", "value"), "no lag or reset while a fast consumer streams")
			seqs = append(seqs, uint64(number(l, "seq")))
		}
		Expect(seqs).To(HaveLen(8))
		for i, s := range seqs {
			Expect(s).To(Equal(last-4+uint64(i)), "value %d: the 5 newest held through %d, then each live one in order", i, last)
		}

		By("kubectl recbuf tail (stream's other name) in text: one line per value, SEQ and the JSON payload")
		out, err := plugin1(plugin, "tail", ringRecord, "-n", namespace, "--count", "2")
		Expect(err).NotTo(HaveOccurred())
		textLines := strings.Split(strings.TrimSpace(out), "\n")
		Expect(textLines).To(HaveLen(2))
		for _, l := range textLines {
			Expect(l).To(MatchRegexp(`^[0-9]+ \{.*"temperature":`))
		}
	})

	It("reads the SingleLatest Record's latest value and takes a published command from the Mailbox", func() {
		By("kubectl recbuf latest state -o json")
		out, err := plugin1(plugin, "latest", latestRecord, "-n", namespace, "-o", "json")
		Expect(err).NotTo(HaveOccurred())
		var v map[string]any
		Expect(json.Unmarshal([]byte(out), &v)).To(Succeed(), "latest: %s", out)
		Expect(v).To(HaveKeyWithValue("event", "value"))
		Expect(number(v, "seq")).To(BeNumerically(">", 0))

		By("stopping the simulator, so that the Mailbox holds only what the plugin publishes")
		Expect(kubectl("scale", "deployment", "edgesim", "-n", namespace, "--replicas=0")).Error().NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			g.Expect(kubectl("get", "pods", "-n", namespace, "-l", "app.kubernetes.io/name=edgesim", "-o", "name")).To(BeEmpty())
		}).Should(Succeed())
		By("emptying the Mailbox of the simulator's last command")
		_, _ = plugin1(plugin, "take", mailRecord, "-n", namespace, "--timeout", "0s")

		By("kubectl recbuf publish commands, through the chart's NATS, then take")
		payload := fmt.Sprintf(`{"command":"plugin-e2e","id":"%d"}`, time.Now().UnixNano())
		out, err = plugin1(plugin, "publish", mailRecord, payload, "-n", namespace, "--header", "Recbuf-Device=plugin")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("published %d bytes on devices.commands", len(payload)))
		out, err = plugin1(plugin, "take", mailRecord, "-n", namespace, "--timeout", "10s", "-o", "json")
		Expect(err).NotTo(HaveOccurred())
		Expect(json.Unmarshal([]byte(out), &v)).To(Succeed(), "take: %s", out)
		Expect(v).To(HaveKeyWithValue("device", "plugin"))
		got, _ := json.Marshal(v["payload"])
		Expect(string(got)).To(MatchJSON(payload))

		By("kubectl recbuf take on the ring fails, naming its type")
		_, err = plugin1(plugin, "take", ringRecord, "-n", namespace)
		Expect(err).To(MatchError(ContainSubstring("take is for Mailbox records; record telemetry is a SpmcRing")))

		By("restarting the simulator")
		Expect(kubectl("scale", "deployment", "edgesim", "-n", namespace, "--replicas=1")).Error().NotTo(HaveOccurred())
		Eventually(verifyDeploymentAvailable(namespace, "edgesim")).Should(Succeed())
	})

	It("summarises the SpmcRing Record's status with rates and its pods", func() {
		out, err := plugin1(plugin, "status", ringRecord, "-n", namespace)
		Expect(err).NotTo(HaveOccurred())
		_, _ = fmt.Fprintf(GinkgoWriter, "%s\n", out)
		Expect(out).To(ContainSubstring("Record %s/%s (SpmcRing, capacity 1024, maxBytes 64Mi): Ready", namespace, ringRecord))
		Expect(out).To(MatchRegexp(`(?m)^Ready\s+True\s+Ready\s`))
		Expect(out).To(MatchRegexp(`(?m)^produced\s+[0-9]+\s+[0-9.]+/s$`), "a rate from two reports")
		Expect(out).To(MatchRegexp(`(?m)^%s-recbuf-\S+\s+true\s`, ringRecord), "the pod table")
	})
}

// plugin1 runs kubectl-recbuf against the suite's cluster and returns its
// standard output.
func plugin1(plugin string, args ...string) (string, error) {
	return run("", nil, plugin, append(args, "--context", kubeContext)...)
}

// runPluginStream runs a kubectl-recbuf command that prints JSON lines
// and ends by itself, and returns the lines and how long after its start
// the first value line came.
func runPluginStream(plugin string, timeout time.Duration, args ...string) ([]map[string]any, time.Duration) {
	cmd := exec.Command(plugin, append(args, "--context", kubeContext)...)
	cmd.Env = os.Environ()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	_, _ = fmt.Fprintf(GinkgoWriter, "running: %s %s\n", plugin, strings.Join(args, " "))
	start := time.Now()
	Expect(cmd.Start()).To(Succeed())
	timer := time.AfterFunc(timeout, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	var (
		lines      []map[string]any
		firstValue time.Duration
	)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var l map[string]any
		Expect(json.Unmarshal(sc.Bytes(), &l)).To(Succeed(), "line %q", sc.Text())
		if l["event"] == "value" && firstValue == 0 {
			firstValue = time.Since(start)
		}
		lines = append(lines, l)
	}
	Expect(cmd.Wait()).To(Succeed(), "stderr: %s", stderr.String())
	return lines, firstValue
}

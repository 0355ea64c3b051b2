//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// rootDir is the repository root, where the suite runs its commands.
var rootDir = func() string {
	d, err := filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	return d
}()

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// run runs a command from the repository root with extra environment and
// returns its standard output; a failure's error carries standard error.
func run(stdin string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = rootDir
	cmd.Env = append(os.Environ(), env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	_, _ = fmt.Fprintf(GinkgoWriter, "running: %s %s\n", name, strings.Join(args, " "))
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	if d := time.Since(start); d > 10*time.Second {
		_, _ = fmt.Fprintf(GinkgoWriter, "  (%s)\n", d.Round(time.Second))
	}
	return stdout.String(), nil
}

// script runs a hack/ script, streaming its output to GinkgoWriter, which
// shows progress on long steps (cluster creation, image builds).
func script(env []string, name string, args ...string) error {
	cmd := exec.Command(filepath.Join(rootDir, "hack", name), args...)
	cmd.Dir = rootDir
	cmd.Env = append(os.Environ(), env...)
	// The failure names the script's last lines: a CI log that keeps only
	// the failure still shows why.
	var out tailBuffer
	cmd.Stdout = io.MultiWriter(GinkgoWriter, &out)
	cmd.Stderr = cmd.Stdout
	_, _ = fmt.Fprintf(GinkgoWriter, "running: hack/%s %s\n", name, strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("hack/%s %s: %w; its last lines:\n%s", name, strings.Join(args, " "), err, out.lastLines(15))
	}
	return nil
}

// tailBuffer keeps the most recent output of a command, bounded in size.
type tailBuffer struct{ b []byte }

const tailBufferSize = 16 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > tailBufferSize {
		t.b = t.b[len(t.b)-tailBufferSize:]
	}
	return len(p), nil
}

func (t *tailBuffer) lastLines(n int) string {
	lines := strings.Split(strings.TrimRight(string(t.b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kubectl runs kubectl against the suite's cluster.
func kubectl(args ...string) (string, error) {
	return run("", nil, "kubectl", append([]string{"--context", kubeContext}, args...)...)
}

// kubectlApply applies a manifest given as text.
func kubectlApply(manifest string, args ...string) (string, error) {
	return run(manifest, nil, "kubectl", append([]string{"--context", kubeContext, "apply", "-f", "-"}, args...)...)
}

// helm runs helm against the suite's cluster.
func helm(args ...string) (string, error) {
	return run("", nil, helmBinary, append([]string{"--kube-context", kubeContext}, args...)...)
}

// getJSON reads one object into v.
func getJSON(v any, args ...string) error {
	out, err := kubectl(append([]string{"get", "-o", "json"}, args...)...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("decode %v: %w", args, err)
	}
	return nil
}

// notFound reports whether kubectl failed because the object does not exist.
func notFound(err error) bool {
	return err != nil && strings.Contains(err.Error(), "NotFound")
}

// record is the part of a Record the suite reads: its status, with the
// JSON names of the API.
type record struct {
	Metadata struct {
		Name       string `json:"name"`
		UID        string `json:"uid"`
		Generation int64  `json:"generation"`
	} `json:"metadata"`
	Status struct {
		Conditions []struct {
			Type               string `json:"type"`
			Status             string `json:"status"`
			Reason             string `json:"reason"`
			Message            string `json:"message"`
			ObservedGeneration int64  `json:"observedGeneration"`
		} `json:"conditions"`
		Endpoint      string `json:"endpoint"`
		Subject       string `json:"subject"`
		ReportingPods int64  `json:"reportingPods"`
		Produced      int64  `json:"produced"`
		Delivered     int64  `json:"delivered"`
		Subscribers   int64  `json:"subscribers"`
		LagEvents     int64  `json:"lagEvents"`
		LaggedValues  int64  `json:"laggedValues"`
		Skipped       int64  `json:"skipped"`
		Overwrites    int64  `json:"overwrites"`
		Dropped       int64  `json:"dropped"`
		Evicted       int64  `json:"evicted"`
		Pods          []struct {
			Name        string `json:"name"`
			Connected   bool   `json:"connected"`
			Produced    int64  `json:"produced"`
			Subscribers int64  `json:"subscribers"`
		} `json:"pods"`
	} `json:"status"`
}

// condition returns the status of condition t ("" when absent).
func (r *record) condition(t string) string {
	for _, c := range r.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

// conditionReason returns "Status/Reason" of condition t ("" when absent).
// observed returns the generation condition t was computed for (0 when absent).
func (r *record) observed(t string) int64 {
	for _, c := range r.Status.Conditions {
		if c.Type == t {
			return c.ObservedGeneration
		}
	}
	return 0
}

func (r *record) conditionReason(t string) string {
	for _, c := range r.Status.Conditions {
		if c.Type == t {
			return c.Status + "/" + c.Reason
		}
	}
	return ""
}

func getRecord(g Gomega, name string) *record {
	var r record
	g.Expect(getJSON(&r, "record", name, "-n", namespace)).To(Succeed())
	return &r
}

// recbufctlPod is a pod that runs recbufctl (from the edgesim image) once.
type recbufctlPod struct {
	namespace, name string
	// label is its app.kubernetes.io/name.
	label string
	// serviceAccount, when set, runs the pod as this ServiceAccount with
	// a projected token of audience audience at tokenMount/token.
	serviceAccount, audience string
	// grace is its termination grace period in seconds.
	grace int
}

// manifest is the pod running recbufctl with args.
func (p recbufctlPod) manifest(args ...string) string {
	a, _ := json.Marshal(args)
	identity, mounts, volumes := "", "", ""
	if p.serviceAccount != "" {
		identity = "\n  serviceAccountName: " + p.serviceAccount
		mounts = "\n    volumeMounts: [{name: recbuf-token, mountPath: " + tokenMount + ", readOnly: true}]"
		volumes = `
  volumes:
  - name: recbuf-token
    projected:
      sources:
      - serviceAccountToken: {audience: ` + p.audience + `, expirationSeconds: 600, path: token}`
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
  labels: {app.kubernetes.io/name: %s}
spec:%s
  restartPolicy: Never
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: %d
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: recbufctl
    image: %s
    imagePullPolicy: IfNotPresent
    command: ["/recbufctl"]
    args: %s
    securityContext: {runAsUser: 65532, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}%s%s
`, p.name, p.namespace, p.label, identity, p.grace, edgesimImage, a, mounts, volumes)
}

// tokenMount is where a recbufctlPod's projected token is mounted.
const tokenMount = "/var/run/secrets/recbuf"

// consumerPod is a pod of the test namespace that runs recbufctl once.
func consumerPod(name string, args ...string) string {
	return recbufctlPod{namespace: namespace, name: name, label: "e2e-consumer", grace: 5}.manifest(args...)
}

// edgesimJob publishes a burst with the edge simulator.
func edgesimJob(name string, args ...string) string {
	a, _ := json.Marshal(append([]string{"--nats-url=" + natsURL}, args...))
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  name: %s
  namespace: %s
spec:
  backoffLimit: 0
  ttlSecondsAfterFinished: 600
  template:
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: edgesim
        image: %s
        imagePullPolicy: IfNotPresent
        args: %s
        securityContext: {runAsUser: 65532, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
`, name, namespace, edgesimImage, a)
}

// runConsumer starts a consumer pod, waits for it to finish and returns the
// summary line it printed last.
func runConsumer(name string, timeout time.Duration, args ...string) map[string]any {
	GinkgoHelper()
	_, _ = kubectl("delete", "pod", name, "-n", namespace, "--ignore-not-found", "--wait")
	Expect(kubectlApply(consumerPod(name, args...))).Error().NotTo(HaveOccurred())
	Eventually(verifyPodSucceeded(name)).WithTimeout(timeout).Should(Succeed())
	return podSummary(name)
}

// verifyPodSucceeded checks that a run-once pod exited with status 0, and
// stops polling when it failed.
func verifyPodSucceeded(name string) func(Gomega) {
	return func(g Gomega) {
		phase, err := kubectl("get", "pod", name, "-n", namespace, "-o", "jsonpath={.status.phase}")
		g.Expect(err).NotTo(HaveOccurred())
		if phase == "Failed" {
			logs, _ := kubectl("logs", name, "-n", namespace)
			StopTrying(fmt.Sprintf("pod %s failed:\n%s", name, logs)).Now()
		}
		g.Expect(phase).To(Equal("Succeeded"), "pod %s phase", name)
	}
}

// podSummary returns the last {"event":"summary"} line of a pod's log.
func podSummary(name string) map[string]any {
	GinkgoHelper()
	logs, err := kubectl("logs", name, "-n", namespace)
	Expect(err).NotTo(HaveOccurred())
	var summary map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["event"] == "summary" {
			summary = line
		}
	}
	Expect(summary).NotTo(BeNil(), "no summary in the logs of pod %s:\n%s", name, logs)
	_, _ = fmt.Fprintf(GinkgoWriter, "pod %s summary: %v\n", name, summary)
	return summary
}

// number reads a JSON number of a summary.
func number(m map[string]any, key string) float64 {
	GinkgoHelper()
	v, ok := m[key].(float64)
	Expect(ok).To(BeTrue(), "summary %v has no number %q", m, key)
	return v
}

// dumpDiagnostics writes what explains a failure: the manager's and the
// buffer pods' logs, events, Records and pods; to GinkgoWriter and to
// test/e2e/artifacts/<spec>.log.
func dumpDiagnostics(spec string) {
	var b strings.Builder
	section := func(title string, args ...string) {
		out, err := kubectl(args...)
		if err != nil {
			out += "\n(" + err.Error() + ")"
		}
		fmt.Fprintf(&b, "===== %s\n%s\n", title, out)
	}
	section("pods", "get", "pods", "-A", "-o", "wide")
	section("records", "get", "records", "-n", namespace, "-o", "yaml")
	section("manager logs", "logs", "-n", systemNamespace, "-l", "app.kubernetes.io/component=manager", "--tail=300", "--all-containers", "--prefix")
	section("buffer pod logs", "logs", "-n", namespace, "-l", "app.kubernetes.io/name=recbuf-buffer", "--tail=100", "--all-containers", "--prefix")
	section("nats logs", "logs", "-n", systemNamespace, "-l", "app.kubernetes.io/component=nats", "--tail=50")
	section("events "+systemNamespace, "get", "events", "-n", systemNamespace, "--sort-by=.lastTimestamp")
	section("events "+namespace, "get", "events", "-n", namespace, "--sort-by=.lastTimestamp")
	_, _ = fmt.Fprint(GinkgoWriter, b.String())

	dir := filepath.Join(rootDir, "test", "e2e", "artifacts")
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, spec)
	if err := errors.Join(os.MkdirAll(dir, 0o755), os.WriteFile(filepath.Join(dir, name+".log"), []byte(b.String()), 0o644)); err != nil {
		_, _ = fmt.Fprintf(GinkgoWriter, "writing diagnostics: %v\n", err)
	}
}

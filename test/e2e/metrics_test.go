//go:build e2e

package e2e

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const (
	// managerMetricsService and managerMetricsPort are the chart's Service
	// in front of the manager's HTTPS metrics endpoint.
	managerMetricsService = "recbuf-manager-metrics"
	managerMetricsPort    = "8443"
	// metricsScraper is the ServiceAccount the suite installs the chart
	// with as metrics.reader.serviceAccount (in namespace), so that the
	// chart binds it to recbuf-metrics-reader; metricsStranger has no
	// binding.
	metricsScraper  = "metrics-scraper"
	metricsStranger = "metrics-stranger"
)

// managerMetricsSpecs check who may read the manager's metrics: the chart
// serves them over HTTPS, to bearer tokens whose user may get /metrics.
func managerMetricsSpecs() {
	It("serves the manager's metrics over HTTPS only to a ServiceAccount bound to recbuf-metrics-reader", func() {
		By("reading them through the API server's Service proxy, which forwards no credentials: 401")
		// The API server authenticates the suite and drops its
		// Authorization header before proxying, so the manager sees a
		// request without a token. kubectl prints any 401 as below; the
		// suite's own credentials serve every other call of this spec.
		Expect(kubectl("get", "--raw", fmt.Sprintf("/api/v1/namespaces/%s/services/http:recbuf-nats:monitor/proxy/healthz", systemNamespace))).
			Error().NotTo(HaveOccurred(), "the suite's own credentials, through the same proxy")
		_, err := kubectl("get", "--raw", fmt.Sprintf("/api/v1/namespaces/%s/services/https:%s:https/proxy/metrics", systemNamespace, managerMetricsService))
		Expect(err).To(MatchError(ContainSubstring("the server has asked for the client to provide credentials")))

		By("reading them through the Service with no token, the token of a ServiceAccount without a binding, and the scraper's")
		strangerToken := serviceAccountToken(metricsStranger)
		scraperToken := serviceAccountToken(metricsScraper)
		Eventually(func(g Gomega) {
			withPortForward(g, systemNamespace, managerMetricsService, managerMetricsPort, func(addr string) {
				for _, tc := range []struct {
					token    string
					wantCode int
					wantBody string
				}{
					{"", http.StatusUnauthorized, "Unauthorized"},
					{strangerToken, http.StatusForbidden, "Authorization denied for user system:serviceaccount:" + namespace + ":" + metricsStranger},
					{scraperToken, http.StatusOK, "controller_runtime_reconcile_total"},
				} {
					code, body, err := getMetrics(addr, tc.token)
					g.Expect(err).NotTo(HaveOccurred())
					g.Expect(code).To(Equal(tc.wantCode), "status of GET /metrics with token %t: %s", tc.token != "", firstLine(body))
					g.Expect(body).To(ContainSubstring(tc.wantBody))
				}
			})
		}).Should(Succeed())

		By("checking that the ServiceMonitor scrapes over HTTPS with Prometheus's token")
		out, err := kubectl("get", "servicemonitor", "recbuf-manager", "-n", systemNamespace,
			"-o", `jsonpath={.spec.endpoints[0].port} {.spec.endpoints[0].scheme} {.spec.endpoints[0].bearerTokenFile} {.spec.endpoints[0].tlsConfig.insecureSkipVerify}`)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal("https https /var/run/secrets/kubernetes.io/serviceaccount/token true"))
	})
}

// verifyManagerMetrics reads the manager's /metrics through its Service
// with the scraper's token and looks for a metric.
func verifyManagerMetrics(metric string) func(Gomega) {
	return func(g Gomega) {
		token := serviceAccountToken(metricsScraper)
		withPortForward(g, systemNamespace, managerMetricsService, managerMetricsPort, func(addr string) {
			code, body, err := getMetrics(addr, token)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(code).To(Equal(http.StatusOK), firstLine(body))
			g.Expect(body).To(ContainSubstring(metric), "metrics of service %s/%s", systemNamespace, managerMetricsService)
		})
	}
}

// serviceAccountToken makes the ServiceAccount name in the test namespace
// if it is missing and returns a short-lived token of it (TokenRequest).
func serviceAccountToken(name string) string {
	GinkgoHelper()
	Expect(kubectlApply(fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: %s, namespace: %s}\n", name, namespace))).Error().NotTo(HaveOccurred())
	token, err := kubectl("create", "token", name, "-n", namespace, "--duration=10m")
	Expect(err).NotTo(HaveOccurred())
	return strings.TrimSpace(token)
}

// withPortForward forwards a free local port to a Service's port (kubectl
// port-forward picks one of its ready pods) while f runs.
func withPortForward(g Gomega, ns, service, port string, f func(addr string)) {
	cmd := exec.Command("kubectl", "--context", kubeContext, "-n", ns, "port-forward", "service/"+service, ":"+port)
	stdout, err := cmd.StdoutPipe()
	g.Expect(err).NotTo(HaveOccurred())
	cmd.Stderr = GinkgoWriter
	g.Expect(cmd.Start()).To(Succeed())
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := forwarding.FindStringSubmatch(sc.Text()); m != nil {
				addr <- "127.0.0.1:" + m[1]
				break
			}
		}
		// Keep reading so that kubectl never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addr:
		f(a)
	case <-time.After(20 * time.Second):
		g.Expect(errors.New("no port-forward within 20s")).NotTo(HaveOccurred())
	}
}

// getMetrics GETs https://addr/metrics, with a bearer token unless it is
// empty. The manager's certificate is self-signed: not verified.
func getMetrics(addr, token string) (int, string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/metrics", nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// firstLine is the start of a response body, for failure messages.
func firstLine(body string) string {
	line, _, _ := strings.Cut(body, "\n")
	return line
}

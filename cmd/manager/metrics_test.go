package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/testutil/kubetest"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/recbuf/recbuf/internal/testutil/sandbox"
)

// The names config/rbac gives the manager's namespace, its ServiceAccount
// and the ClusterRole that may read its metrics.
const (
	systemNamespace   = "recbuf-system"
	managerSA         = "recbuf-manager"
	metricsReaderRole = "recbuf-metrics-reader"
)

// TestTheManagersMetricsNeedAnAuthorizedToken runs the manager as `make
// deploy` does: as its ServiceAccount, with exactly the RBAC of
// config/rbac, so that the TokenReviews and SubjectAccessReviews behind its
// metrics endpoint run with the manager's own privileges. By default the
// endpoint is HTTPS on a self-signed certificate, refuses plain HTTP,
// answers 401 without a valid token, 403 to a ServiceAccount that may not
// get /metrics, and serves the metrics to one bound to
// recbuf-metrics-reader. --metrics-cert-path serves a provided certificate
// instead; --metrics-secure=false serves plain HTTP to anyone, for
// development.
func TestTheManagersMetricsNeedAnAuthorizedToken(t *testing.T) {
	g := NewWithT(t)
	cfg := startEnvtest(t)
	k8s := newClient(t, cfg)
	ctx := context.Background()

	applyConfigRBAC(t, k8s)
	g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "monitoring"}})).To(Succeed())
	reader := createServiceAccount(t, k8s, "monitoring", "prometheus")
	stranger := createServiceAccount(t, k8s, "default", "stranger")
	g.Expect(k8s.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-recbuf-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: metricsReaderRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "monitoring", Name: "prometheus"}},
	})).To(Succeed())
	// The manager caches a refusal for 30 s: wait until the API server's
	// RBAC has the binding before the manager first asks about it.
	g.Eventually(func() (bool, error) {
		return canGetMetrics(ctx, k8s, "system:serviceaccount:monitoring:prometheus")
	}, 10*time.Second, 50*time.Millisecond).Should(BeTrue())
	readerToken, strangerToken := createToken(t, k8s, reader), createToken(t, k8s, stranger)
	managerCfg := &rest.Config{
		Host:            cfg.Host,
		TLSClientConfig: rest.TLSClientConfig{CAData: cfg.CAData},
		BearerToken:     createToken(t, k8s, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: managerSA}}),
	}

	t.Run("by default the endpoint is HTTPS, for authorized tokens only", func(t *testing.T) {
		g := NewWithT(t)
		addr := startManager(t, managerCfg)
		https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		t.Cleanup(https.CloseIdleConnections)

		_, code, err := get(http.DefaultClient, "http://"+addr+"/metrics", "")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusBadRequest), "plain HTTP to the HTTPS endpoint")

		tests := []tokenCase{
			{"a request without a token is unauthorized", "", http.StatusUnauthorized, "Unauthorized"},
			// controller-runtime's filter turns the TokenReview's "not
			// authenticated, because: invalid token" into an error, and
			// so a 500: refused all the same (docs/security.md).
			{"a made-up token is refused", "not-a-token", http.StatusInternalServerError, "Authentication failed"},
			{"the manager's own token may not read the metrics", managerCfg.BearerToken, http.StatusForbidden,
				"Authorization denied for user system:serviceaccount:recbuf-system:recbuf-manager"},
			{"a ServiceAccount without get on /metrics is forbidden", strangerToken, http.StatusForbidden,
				"Authorization denied for user system:serviceaccount:default:stranger"},
			{"a ServiceAccount bound to recbuf-metrics-reader reads the metrics", readerToken, http.StatusOK,
				`controller_runtime_reconcile_total{controller="record"`},
		}
		expectAnswers(t, https, "https://"+addr+"/metrics", tests)
	})

	t.Run("--profiling serves the profiles behind the same authentication, to a role that allows them", func(t *testing.T) {
		g := NewWithT(t)
		profiler := createServiceAccount(t, k8s, "default", "profiler")
		g.Expect(k8s.Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "recbuf-profile-reader"},
			Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/debug/pprof", "/debug/pprof/*"}, Verbs: []string{"get"}}},
		})).To(Succeed())
		g.Expect(k8s.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "profiler-recbuf-profiles"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "recbuf-profile-reader"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: "profiler"}},
		})).To(Succeed())
		t.Cleanup(func() {
			_ = k8s.Delete(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "profiler-recbuf-profiles"}})
			_ = k8s.Delete(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "recbuf-profile-reader"}})
			_ = k8s.Delete(ctx, profiler)
		})
		// As for /metrics: the manager caches a refusal for 30 s.
		g.Eventually(func() (bool, error) {
			return canGet(ctx, k8s, "system:serviceaccount:default:profiler", "/debug/pprof/heap")
		}, 10*time.Second, 50*time.Millisecond).Should(BeTrue())
		profilerToken := createToken(t, k8s, profiler)
		https := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		t.Cleanup(https.CloseIdleConnections)

		off := startManager(t, managerCfg, "--leader-elect=false")
		_, code, err := get(https, "https://"+off+"/debug/pprof/heap", profilerToken)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusNotFound), "the profiles without --profiling")

		addr := startManager(t, managerCfg, "--profiling", "--leader-elect=false")
		tests := []tokenCase{
			{"a request without a token is unauthorized", "", http.StatusUnauthorized, "Unauthorized"},
			{"a ServiceAccount that may read the metrics may not read the profiles", readerToken, http.StatusForbidden,
				"Authorization denied for user system:serviceaccount:monitoring:prometheus"},
			{"a ServiceAccount bound to a role on /debug/pprof/* reads them", profilerToken, http.StatusOK, "heap profile:"},
		}
		expectAnswers(t, https, "https://"+addr+"/debug/pprof/heap?debug=1", tests)
	})

	t.Run("--metrics-cert-path serves the provided certificate", func(t *testing.T) {
		g := NewWithT(t)
		const serverName = "recbuf-manager-metrics.recbuf-system.svc"
		cert, key, err := certutil.GenerateSelfSignedCertKey(serverName, nil, nil)
		g.Expect(err).NotTo(HaveOccurred())
		dir := sandbox.WriteFiles(t, map[string][]byte{"tls.crt": cert, "tls.key": key})
		addr := startManager(t, managerCfg, "--metrics-cert-path="+dir, "--leader-elect=false")

		roots := x509.NewCertPool()
		g.Expect(roots.AppendCertsFromPEM(cert)).To(BeTrue())
		verifying := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serverName}}}
		t.Cleanup(verifying.CloseIdleConnections)
		body, code, err := get(verifying, "https://"+addr+"/metrics", readerToken)
		g.Expect(err).NotTo(HaveOccurred(), "a client that verifies the provided certificate")
		g.Expect(code).To(Equal(http.StatusOK), firstLine(body))
		_, code, err = get(verifying, "https://"+addr+"/metrics", "")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusUnauthorized))
	})

	t.Run("--metrics-secure=false serves plain HTTP to anyone, for development", func(t *testing.T) {
		g := NewWithT(t)
		addr := startManager(t, managerCfg, "--metrics-secure=false", "--leader-elect=false")
		body, code, err := get(http.DefaultClient, "http://"+addr+"/metrics", "")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusOK), firstLine(body))
		g.Expect(body).To(ContainSubstring(`controller_runtime_reconcile_total{controller="record"`))
	})
}

// TestAMissingMetricsCertificateStopsTheManager: a --metrics-cert-path
// without a certificate stops the manager before it needs an API server,
// rather than falling back to a self-signed certificate that Prometheus,
// told to verify the provided one, would refuse.
func TestAMissingMetricsCertificateStopsTheManager(t *testing.T) {
	dir := t.TempDir()
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o, err := parseFlags(fs, []string{"--metrics-cert-path=" + dir})
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	err = run(context.Background(), &rest.Config{Host: "http://127.0.0.1:1"}, o)
	if err == nil || !strings.Contains(err.Error(), "--metrics-cert-path "+dir) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got error %v, want one naming --metrics-cert-path and wrapping os.ErrNotExist", err)
	}
}

// startEnvtest starts a kube-apiserver and etcd with the Record CRD, for
// the duration of the test.
func startEnvtest(t *testing.T) *rest.Config {
	t.Helper()
	env, err := kubetest.Environment()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	return cfg
}

func newClient(t *testing.T, cfg *rest.Config) client.Client {
	t.Helper()
	k8s, err := kubetest.Client(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k8s
}

// applyConfigRBAC creates the manager's namespace and every object of
// config/rbac/kustomization.yaml's resources, as `make deploy` does.
func applyConfigRBAC(t *testing.T, k8s client.Client) {
	t.Helper()
	ctx := context.Background()
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "config", "rbac")
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	if err := sigsyaml.Unmarshal(raw, &kustomization); err != nil {
		t.Fatalf("parse config/rbac/kustomization.yaml: %v", err)
	}
	for _, file := range kustomization.Resources {
		raw, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		docs := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			var obj unstructured.Unstructured
			if err := docs.Decode(&obj.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("parse config/rbac/%s: %v", file, err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			if err := k8s.Create(ctx, &obj); err != nil {
				t.Fatalf("create %s %s of config/rbac/%s: %v", obj.GetKind(), obj.GetName(), file, err)
			}
		}
	}
}

func createServiceAccount(t *testing.T, k8s client.Client, ns, name string) *corev1.ServiceAccount {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := k8s.Create(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
	return sa
}

// createToken makes a ServiceAccount token with the TokenRequest API, as
// the kubelet does for a pod.
func createToken(t *testing.T, k8s client.Client, sa *corev1.ServiceAccount) string {
	t.Helper()
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}
	if err := k8s.SubResource("token").Create(context.Background(), sa, req); err != nil {
		t.Fatalf("token of %s/%s: %v", sa.Namespace, sa.Name, err)
	}
	return req.Status.Token
}

// tokenCase is a request with a bearer token and the answer it must get.
type tokenCase struct {
	name     string
	token    string
	wantCode int
	wantBody string
}

// expectAnswers GETs url once per case, each a subtest.
func expectAnswers(t *testing.T, c *http.Client, url string, cases []tokenCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			body, code, err := get(c, url, tt.token)
			if err != nil {
				t.Fatalf("GET %s: %v", url, err)
			}
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("got %d %q, want %d with %q", code, firstLine(body), tt.wantCode, tt.wantBody)
			}
		})
	}
}

// canGetMetrics asks the API server whether user may get /metrics.
func canGetMetrics(ctx context.Context, k8s client.Client, user string) (bool, error) {
	return canGet(ctx, k8s, user, "/metrics")
}

// canGet asks the API server whether user may get the non-resource URL path.
func canGet(ctx context.Context, k8s client.Client, user, path string) (bool, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:                  user,
		NonResourceAttributes: &authorizationv1.NonResourceAttributes{Path: path, Verb: "get"},
	}}
	if err := k8s.Create(ctx, sar); err != nil {
		return false, err
	}
	return sar.Status.Allowed, nil
}

// startManager runs the manager against cfg with a metrics address of its
// own and extra flags until the test ends, waits until it is ready and
// returns its metrics address.
func startManager(t *testing.T, cfg *rest.Config, args ...string) string {
	t.Helper()
	g := NewWithT(t)
	metricsAddr := "127.0.0.1:" + strconv.Itoa(sandbox.FreePort(t))
	probeAddr := "127.0.0.1:" + strconv.Itoa(sandbox.FreePort(t))
	masterKeyFile := filepath.Join(t.TempDir(), "key")
	g.Expect(os.WriteFile(masterKeyFile, []byte("a master key of thirty-two bytes or more, for this test"), 0o600)).To(Succeed())
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o, err := parseFlags(fs, append([]string{
		"--report-master-key-file=" + masterKeyFile,
		"--nats-url=nats://127.0.0.1:" + strconv.Itoa(sandbox.FreePort(t)),
		"--metrics-bind-address=" + metricsAddr, "--health-probe-bind-address=" + probeAddr,
		"--leader-election-namespace=" + systemNamespace,
	}, args...))
	g.Expect(err).NotTo(HaveOccurred())
	o.skipControllerNameValidation = true

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, o) }()
	t.Cleanup(func() {
		cancel()
		g.Eventually(done, 30*time.Second).Should(Receive(BeNil()))
	})
	g.Eventually(func() error {
		select {
		case err := <-done:
			done <- err
			return StopTrying("the manager exited").Wrap(err)
		default:
		}
		_, code, err := get(http.DefaultClient, "http://"+probeAddr+"/readyz", "")
		if err == nil && code != http.StatusOK {
			err = errors.New("not ready: " + strconv.Itoa(code))
		}
		if err == nil {
			// The metrics server is a runnable of its own: ready
			// probes say nothing about it, its listener does.
			var c net.Conn
			if c, err = net.Dial("tcp", metricsAddr); err == nil {
				_ = c.Close()
			}
		}
		return err
	}, 20*time.Second, 50*time.Millisecond).Should(Succeed())
	return metricsAddr
}

// get GETs url, with a bearer token unless it is empty, and returns the
// body and status code.
func get(c *http.Client, url, token string) (string, int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return string(body), resp.StatusCode, err
}

// firstLine is the start of a response body, for failure messages.
func firstLine(body string) string {
	line, _, _ := strings.Cut(body, "\n")
	return line
}

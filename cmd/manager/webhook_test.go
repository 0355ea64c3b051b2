package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/testutil/kubetest"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/testutil/sandbox"
)

// TestTheManagerServesTheWebhookWithCertificatesItMakesAndRotates runs the
// manager as main does with --sidecar-injection and a serving certificate
// valid for 20 s: it makes the CA and the certificate in its Secret, writes
// the CA into the webhook configuration (replacing the one envtest put
// there), is ready only then, injects a pod, renews the certificate before
// it expires, and still injects after the renewal. The test plays the
// kubelet's part: it copies the Secret into the certificate directory.
func TestTheManagerServesTheWebhookWithCertificatesItMakesAndRotates(t *testing.T) {
	g := NewWithT(t)
	const mwcName = "recbuf-sidecar-injector"
	env, err := kubetest.Environment()
	if err != nil {
		t.Fatal(err)
	}
	env.WebhookInstallOptions = envtest.WebhookInstallOptions{
		LocalServingHost:             "127.0.0.1",
		LocalServingHostExternalName: "localhost",
		MutatingWebhooks:             []*admissionregistrationv1.MutatingWebhookConfiguration{sidecarWebhookConfiguration(mwcName)},
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	k8s, err := kubetest.Client(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()

	// The chart creates the Secret empty.
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "recbuf-webhook-cert"}}
	g.Expect(k8s.Create(ctx, secret)).To(Succeed())
	certDir := t.TempDir()
	kubeletCtx, stopKubelet := context.WithCancel(ctx)
	kubeletDone := make(chan struct{})
	// The copying must have stopped before the directory is removed, or a
	// file it writes then makes the removal fail.
	t.Cleanup(func() { stopKubelet(); <-kubeletDone })
	go func() {
		defer close(kubeletDone)
		mountSecret(kubeletCtx, k8s, client.ObjectKeyFromObject(secret), certDir)
	}()

	probeAddr := runManager(t, g, cfg, []string{
		"--webhook-port=" + strconv.Itoa(env.WebhookInstallOptions.LocalServingPort),
		"--webhook-cert-dir=" + certDir, "--webhook-cert-secret=default/recbuf-webhook-cert",
		"--webhook-service=default/recbuf-webhook", "--webhook-configuration=" + mwcName,
		"--webhook-cert-validity=20s",
	}, func(o *options) { o.webhookExtraDNSNames = []string{"localhost"} })

	t.Log("the manager is ready once its CA is in the webhook configuration")
	waitReady(g, probeAddr)
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
	g.Expect(secret.Data).To(HaveKey("ca.crt"))
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: mwcName}, &mwc)).To(Succeed())
	g.Expect(mwc.Webhooks[0].ClientConfig.CABundle).To(Equal(secret.Data["ca.crt"]), "the caBundle is the manager's CA")
	g.Expect(mwc.Webhooks[0].ClientConfig.CABundle).NotTo(Equal(env.WebhookInstallOptions.LocalServingCAData))
	first := notAfter(t, secret.Data["tls.crt"])
	// HTTP/2 is off, as on the metrics endpoint: its stream multiplexing
	// lets one client hold the server busy (CVE-2023-44487, CVE-2023-39325),
	// and the API server speaks HTTP/1.1 to webhooks just as well.
	g.Expect(negotiatedProtocol(env.WebhookInstallOptions.LocalServingPort)).To(Equal("http/1.1"), "a client offering h2 gets HTTP/1.1")

	createObservedRecord(g, k8s, "telemetry")
	injects := func(g Gomega) { injectsSidecar(g, k8s, "telemetry") }
	t.Log("a pod is injected")
	g.Eventually(injects, 20*time.Second, 200*time.Millisecond).Should(Succeed())

	t.Log("the certificate is renewed before it expires, and pods are still injected")
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(secret), secret)).To(Succeed())
		g.Expect(notAfter(t, secret.Data["tls.crt"]).After(first)).To(BeTrue())
	}, 40*time.Second, 500*time.Millisecond).Should(Succeed())
	renewed := secret.Data["tls.crt"]
	// The webhook server picks the new files up (certwatcher): wait until
	// it serves the renewed certificate, then admit.
	g.Eventually(func() ([]byte, error) { return servedCert(env.WebhookInstallOptions.LocalServingPort) }, 30*time.Second, 200*time.Millisecond).
		Should(Equal(pemBlock(t, renewed)))
	injects(g)
}

// runManager runs the manager as main does, with --sidecar-injection and
// the webhook flags in args, against the API server of cfg; adjust sets
// what no flag can. It returns the address of its health probes and
// stops it when the test ends.
func runManager(t *testing.T, g Gomega, cfg *rest.Config, args []string, adjust func(*options)) string {
	t.Helper()
	probeAddr := "127.0.0.1:" + strconv.Itoa(sandbox.FreePort(t))
	masterKeyFile := filepath.Join(t.TempDir(), "key")
	g.Expect(os.WriteFile(masterKeyFile, []byte("a master key of thirty-two bytes or more, for this test"), 0o600)).To(Succeed())
	o, err := parseFlags(flag.NewFlagSet("manager", flag.ContinueOnError), append([]string{
		"--report-master-key-file=" + masterKeyFile,
		"--nats-url=nats://127.0.0.1:" + strconv.Itoa(sandbox.FreePort(t)),
		"--metrics-bind-address=0", "--health-probe-bind-address=" + probeAddr, "--leader-elect=false",
		"--sidecar-injection",
	}, args...))
	g.Expect(err).NotTo(HaveOccurred())
	o.skipControllerNameValidation = true
	if adjust != nil {
		adjust(&o)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(runCtx, cfg, o) }()
	t.Cleanup(func() {
		cancel()
		g.Eventually(done, 30*time.Second).Should(Receive(BeNil()))
	})
	return probeAddr
}

// waitReady waits until the manager's /readyz at probeAddr answers 200.
func waitReady(g Gomega, probeAddr string) {
	g.Eventually(func() (int, error) {
		resp, err := http.Get("http://" + probeAddr + "/readyz")
		if err != nil {
			return 0, err
		}
		defer func() { _ = resp.Body.Close() }()
		return resp.StatusCode, nil
	}, 60*time.Second, 100*time.Millisecond).Should(Equal(http.StatusOK))
}

// createObservedRecord creates the SingleLatest Record default/name and
// waits until the manager has observed it.
func createObservedRecord(g Gomega, k8s client.Client, name string) {
	ctx := context.Background()
	rec := &recbufv1alpha1.Record{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSingleLatest}},
	}
	g.Expect(k8s.Create(ctx, rec)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(rec), rec)).To(Succeed())
		g.Expect(rec.Status.ObservedGeneration).To(Equal(rec.Generation))
	}, 20*time.Second).Should(Succeed())
}

// injectsSidecar creates, through the API server, an app pod that asks
// for the Record default/record, and expects its buffer injected.
func injectsSidecar(g Gomega, k8s client.Client, record string) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "default", GenerateName: "app-",
			Labels:      map[string]string{recbufv1alpha1.LabelInject: "true"},
			Annotations: map[string]string{recbufv1alpha1.AnnotationRecords: record},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app"}}},
	}
	g.Expect(k8s.Create(context.Background(), pod)).To(Succeed())
	g.Expect(pod.Spec.InitContainers).To(ContainElement(HaveField("Name", "recbuf-"+record)))
}

// mountSecret copies the Secret's data into dir as the kubelet does a
// Secret volume, until ctx is done.
func mountSecret(ctx context.Context, k8s client.Client, key client.ObjectKey, dir string) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var s corev1.Secret
		if err := k8s.Get(ctx, key, &s); err == nil {
			for name, data := range s.Data {
				path := filepath.Join(dir, name)
				if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
					continue
				}
				tmp := path + ".tmp"
				if os.WriteFile(tmp, data, 0o600) == nil {
					_ = os.Rename(tmp, path)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// servedCert is the certificate the webhook server on port presents.
func servedCert(port int) ([]byte, error) {
	conn, err := tls.Dial("tcp", net.JoinHostPort("localhost", strconv.Itoa(port)), &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // only the certificate is read, nothing is sent
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().PeerCertificates[0].Raw, nil
}

// negotiatedProtocol is the ALPN protocol the webhook server on port
// picks for a client that offers HTTP/2 first.
func negotiatedProtocol(port int) (string, error) {
	conn, err := tls.Dial("tcp", net.JoinHostPort("localhost", strconv.Itoa(port)), &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // only the protocol is read, nothing is sent
		NextProtos:         []string{"h2", "http/1.1"},
	})
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().NegotiatedProtocol, nil
}

// notAfter is the end of the PEM certificate's validity.
func notAfter(t *testing.T, certPEM []byte) time.Time {
	t.Helper()
	c, err := x509.ParseCertificate(pemBlock(t, certPEM))
	if err != nil {
		t.Fatalf("parsing the certificate: %v", err)
	}
	return c.NotAfter
}

func pemBlock(t *testing.T, certPEM []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatalf("no PEM block in %q", certPEM)
	}
	return b.Bytes
}

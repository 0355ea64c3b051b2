package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/testutil/kubetest"
	recbufwebhook "github.com/recbuf/recbuf/internal/webhook"
)

// TestTheWebhookAnswersOnlyTheAPIServer runs the manager with
// --webhook-client-ca-file and --webhook-client-names, and an API server
// configured (an AdmissionConfiguration whose webhook kubeconfig holds a
// client certificate) to present a certificate that CA signed: pods
// created through the API server are injected, the manager is ready (its
// readiness check dials the webhook without a certificate), and a forged
// AdmissionReview posted straight to the webhook, which would read another
// namespace's Records out of the patch, is refused in the TLS handshake
// without a certificate, with one from another CA, and with one of the CA
// for another name.
func TestTheWebhookAnswersOnlyTheAPIServer(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	clientCA := newTestCA(t, "kube-apiserver client CA")
	apiServerCert := clientCA.issue(t, "kube-apiserver-webhook-client")
	otherCA := newTestCA(t, "some other CA")
	strangerCert := otherCA.issue(t, "kube-apiserver-webhook-client")
	wrongNameCert := clientCA.issue(t, "someone-else")
	caFile := filepath.Join(dir, "client-ca.crt")
	g.Expect(os.WriteFile(caFile, clientCA.certPEM, 0o600)).To(Succeed())

	// The API server's webhook client credentials, for every webhook
	// host ("*"), as on kubeadm (docs/security.md#the-webhooks-callers).
	certFile, keyFile := filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key")
	g.Expect(os.WriteFile(certFile, apiServerCert.certPEM, 0o600)).To(Succeed())
	g.Expect(os.WriteFile(keyFile, apiServerCert.keyPEM, 0o600)).To(Succeed())
	kubeconfig := filepath.Join(dir, "webhook-kubeconfig.yaml")
	g.Expect(os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
users:
- name: "*"
  user:
    client-certificate: `+certFile+`
    client-key: `+keyFile+`
`), 0o600)).To(Succeed())
	admissionConfig := filepath.Join(dir, "admission.yaml")
	g.Expect(os.WriteFile(admissionConfig, []byte(`apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: MutatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: `+kubeconfig+`
`), 0o600)).To(Succeed())

	env, err := kubetest.Environment()
	if err != nil {
		t.Fatal(err)
	}
	env.ControlPlane.GetAPIServer().Configure().Append("admission-control-config-file", admissionConfig)
	env.WebhookInstallOptions = envtest.WebhookInstallOptions{
		LocalServingHost:             "127.0.0.1",
		LocalServingHostExternalName: "localhost",
		MutatingWebhooks:             []*admissionregistrationv1.MutatingWebhookConfiguration{sidecarWebhookConfiguration("recbuf-sidecar-injector")},
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	k8s, err := kubetest.Client(cfg)
	g.Expect(err).NotTo(HaveOccurred())

	port := env.WebhookInstallOptions.LocalServingPort
	probeAddr := runManager(t, g, cfg, []string{
		"--webhook-port=" + strconv.Itoa(port),
		"--webhook-certs=external", "--webhook-cert-dir=" + env.WebhookInstallOptions.LocalServingCertDir,
		"--webhook-client-ca-file=" + caFile, "--webhook-client-names=kube-apiserver-webhook-client",
	}, nil)

	t.Log("the manager is ready: its readiness check presents its own probe certificate")
	// The webhook server logs refused handshakes through the standard
	// logger: the readiness checks must cause none.
	var serverLog syncBuffer
	log.SetOutput(&serverLog)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	waitReady(g, probeAddr)
	for range 3 {
		waitReady(g, probeAddr)
	}
	g.Expect(serverLog.String()).NotTo(ContainSubstring("TLS handshake error"), "the readiness check presents the manager's probe certificate")
	createObservedRecord(g, k8s, "telemetry")

	t.Log("a pod created through the API server is injected: the API server's certificate is accepted")
	g.Eventually(func(g Gomega) { injectsSidecar(g, k8s, "telemetry") }, 20*time.Second, 200*time.Millisecond).Should(Succeed())

	// A forged review, as a pod in another namespace would send it, naming
	// the namespace whose Records it wants to read.
	review := forgedReview(t, "default", "telemetry")
	t.Log("with the API server's certificate, the same review is answered (the refusals below are the certificate's doing)")
	g.Expect(postReview(port, review, &apiServerCert.tls)).To(ContainSubstring("recbuf-telemetry"))
	for name, cert := range map[string]*tls.Certificate{
		"no client certificate":                       nil,
		"a certificate of another CA":                 &strangerCert.tls,
		"the CA's certificate for a name not allowed": &wrongNameCert.tls,
	} {
		t.Logf("with %s, the webhook answers nothing", name)
		body, err := postReview(port, review, cert)
		g.Expect(err).To(HaveOccurred(), "with %s the webhook answered %q", name, body)
		t.Logf("refused: %v", err)
		g.Expect(body).To(BeEmpty(), "with %s", name)
		g.Expect(err.Error()).To(ContainSubstring("remote error: tls:"), "with %s: refused in the handshake, not by an HTTP answer", name)
	}
}

// sidecarWebhookConfiguration is the chart's MutatingWebhookConfiguration,
// reduced to what envtest needs: it points the service at its own server.
func sidecarWebhookConfiguration(name string) *admissionregistrationv1.MutatingWebhookConfiguration {
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: "sidecar.recbuf.dev",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
				Namespace: "default", Name: "recbuf-webhook", Path: ptr.To(recbufwebhook.Path),
			}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{recbufv1alpha1.LabelInject: "true"}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}

// forgedReview is an AdmissionReview of a pod in namespace that asks for
// the Record record.
func forgedReview(t *testing.T, namespace, record string) []byte {
	t.Helper()
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: "forged",
			Labels:      map[string]string{recbufv1alpha1.LabelInject: "true"},
			Annotations: map[string]string{recbufv1alpha1.AnnotationRecords: record},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app"}}},
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	review, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "forged",
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: namespace, Name: "forged",
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return review
}

// postReview posts review straight to the webhook on port, presenting
// cert (none if nil), and returns the answer's JSON patch.
func postReview(port int, review []byte, cert *tls.Certificate) (string, error) {
	conf := &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // the test is about the server checking the client
	}
	if cert != nil {
		// Sent whatever CAs the server names as acceptable (Go's client
		// would otherwise keep a certificate of another CA to itself).
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
	defer c.CloseIdleConnections()
	url := "https://" + net.JoinHostPort("localhost", strconv.Itoa(port)) + recbufwebhook.Path
	resp, err := c.Post(url, "application/json", bytes.NewReader(review))
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	var answer admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &answer); err != nil || answer.Response == nil {
		return string(body), fmt.Errorf("an answer that is no AdmissionReview response: %q", body)
	}
	return string(answer.Response.Patch), nil
}

// testCA is a CA a test makes, and the certificates it issues.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

type testCert struct {
	certPEM, keyPEM []byte
	tls             tls.Certificate
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue makes a client certificate with common name cn.
func (ca *testCA) issue(t *testing.T, cn string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := testCert{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	c.tls, err = tls.X509KeyPair(c.certPEM, c.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// syncBuffer is a bytes.Buffer that the server's goroutines may write
// while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

package controllers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/testutil/kubetest"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/statusagg"
	recbufwebhook "github.com/recbuf/recbuf/internal/webhook"
)

// The suite runs one API server (envtest), one NATS server and one manager
// with the Record controller and the status collector; each test works in
// its own namespace. Timings are short so that staleness shows in seconds.
const (
	testPrefix         = "test.stats"
	testStatusInterval = 100 * time.Millisecond
	testStaleAfter     = 2 * time.Second
	testImage          = "example.com/recbuf/sidecar:test"
)

var (
	// k8s talks to the API server directly (no cache), so that tests see
	// the state of the world as it is.
	k8s client.Client
	// testConfig is the reconciler's configuration.
	testConfig Config
	// natsConn publishes the reports the tests make up.
	natsConn *nats.Conn
	// natsServer is the suite's NATS server.
	natsServer *server.Server
	// reconciles counts finished reconciles per Record.
	reconciles = &reconcileCounter{n: map[types.NamespacedName]int{}}
	// restConfig reaches the suite's API server, for tests that run a
	// manager of their own (startManager).
	restConfig *rest.Config
)

// labelOwnManager, on a Record, hands it to a test's own manager
// (startManager): the suite's manager does not see it.
const labelOwnManager = "test.recbuf.dev/own-manager"

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true), zap.Level(zapLevel()),
		zap.StacktraceLevel(zapcore.PanicLevel)))
	env, err := kubetest.Environment()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The sidecar injection webhook, as the chart installs it, served by
	// the suite's manager.
	env.WebhookInstallOptions = envtest.WebhookInstallOptions{
		MutatingWebhooks: []*admissionregistrationv1.MutatingWebhookConfiguration{testWebhookConfiguration()},
	}
	os.Exit(kubetest.Main(m, env, setupSuite))
}

// setupSuite starts the suite's NATS server and its manager, which the
// tests share; the teardown stops them in the reverse order.
func setupSuite(env *envtest.Environment, cfg *rest.Config) (func() error, error) {
	var undo []func() error
	teardown := func() error {
		var errs []error
		for _, f := range slices.Backward(undo) {
			errs = append(errs, f())
		}
		return errors.Join(errs...)
	}
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, fmt.Errorf("creating NATS server: %w", err)
	}
	natsServer = ns
	go ns.Start()
	undo = append(undo, func() error { ns.Shutdown(); ns.WaitForShutdown(); return nil })
	if !ns.ReadyForConnections(10 * time.Second) {
		return teardown, errors.New("NATS server not ready")
	}
	natsConn, err = nats.Connect(ns.ClientURL())
	if err != nil {
		return teardown, fmt.Errorf("connecting to NATS: %w", err)
	}
	undo = append(undo, func() error { natsConn.Close(); return nil })

	scheme, err := kubetest.Scheme()
	if err != nil {
		return teardown, err
	}
	if k8s, err = kubetest.Client(cfg); err != nil {
		return teardown, err
	}

	restConfig = cfg
	cacheOpts := CacheOptions()
	notOwn, err := labels.NewRequirement(labelOwnManager, selection.DoesNotExist, nil)
	if err != nil {
		return teardown, err
	}
	cacheOpts.ByObject[&recbufv1alpha1.Record{}] = cache.ByObject{Label: labels.NewSelector().Add(*notOwn)}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		WebhookServer: webhook.NewServer(webhook.Options{
			Host:    env.WebhookInstallOptions.LocalServingHost,
			Port:    env.WebhookInstallOptions.LocalServingPort,
			CertDir: env.WebhookInstallOptions.LocalServingCertDir,
		}),
	})
	if err != nil {
		return teardown, fmt.Errorf("creating manager: %w", err)
	}
	collector := statusagg.New(statusagg.Options{
		URL: ns.ClientURL(), Prefix: testPrefix,
		Interval: testStatusInterval, StaleAfter: testStaleAfter,
		Logger: ctrl.Log.WithName("statusagg"),
	})
	if err := mgr.Add(collector); err != nil {
		return teardown, err
	}
	testConfig = Config{
		BufferImage:           testImage,
		BufferImagePullPolicy: corev1.PullNever,
		NATSURL:               ns.ClientURL(),
		ReportSubjectPrefix:   testPrefix,
		ReportInterval:        time.Second,
		// The suite's own server is the default; nats.example is a server
		// the admin allows too, for the Records that name one.
		AllowedNATSServers: []string{ns.ClientURL(), "tls://nats.example:4222"},
		ReportMasterKey:    testMasterKey,
		// As the multi-tenant profile: every Record gets a NetworkPolicy.
		NetworkPolicies: NetworkPolicyConfig{Enabled: true, MetricsFrom: monitoring},
	}
	sidecarOpts := SidecarPodsCacheOptions(scheme)
	sidecarOpts.Mapper = mgr.GetRESTMapper()
	sidecarPods, err := cache.New(cfg, sidecarOpts)
	if err != nil {
		return teardown, err
	}
	if err := mgr.Add(sidecarPods); err != nil {
		return teardown, err
	}
	r := &RecordReconciler{
		Client:      mgr.GetClient(),
		APIReader:   mgr.GetAPIReader(),
		Scheme:      mgr.GetScheme(),
		Recorder:    mgr.GetEventRecorder("recbuf-manager"),
		Reports:     collector,
		Config:      testConfig,
		SidecarPods: sidecarPods,
	}
	if err := r.setupWithManager(mgr, reconciles.wrap(r)); err != nil {
		return teardown, fmt.Errorf("setting up the controller: %w", err)
	}

	mgr.GetWebhookServer().Register(recbufwebhook.Path, &webhook.Admission{Handler: &recbufwebhook.Injector{
		Client:  mgr.GetClient(),
		Decoder: admission.NewDecoder(scheme),
		Config:  recbufwebhook.Config{BufferPod: testConfig.BufferPod(), NATSPolicy: testConfig.NATSPolicy()},
	}})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	undo = append(undo, func() error {
		cancel()
		if err := <-done; err != nil {
			return fmt.Errorf("manager: %w", err)
		}
		return nil
	})
	return teardown, nil
}

// zapLevel is the suite's log level: errors only, unless RECBUF_TEST_LOG
// asks for debug logs.
func zapLevel() zapcore.Level {
	if os.Getenv("RECBUF_TEST_LOG") != "" {
		return -1
	}
	return 2
}

// reconcileCounter counts the reconciles that finished, so that a test can
// wait for one to happen rather than sleep.
type reconcileCounter struct {
	mu sync.Mutex
	n  map[types.NamespacedName]int
}

func (c *reconcileCounter) wrap(r reconcile.Reconciler) reconcile.Reconciler {
	return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		res, err := r.Reconcile(ctx, req)
		c.mu.Lock()
		c.n[req.NamespacedName]++
		c.mu.Unlock()
		return res, err
	})
}

func (c *reconcileCounter) get(key types.NamespacedName) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ns) })
	return ns.Name
}

// newRecord returns a Record in ns with spec.
func newRecord(ns, name string, spec recbufv1alpha1.RecordSpec) *recbufv1alpha1.Record {
	return &recbufv1alpha1.Record{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func ringSpec(capacity int32) recbufv1alpha1.RecordSpec {
	return recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSpmcRing, Capacity: &capacity}}
}

// create creates obj, failing the test on error.
func create(t *testing.T, g Gomega, obj client.Object) {
	t.Helper()
	g.Expect(k8s.Create(context.Background(), obj)).To(Succeed())
}

// get reads obj's current state into it.
func get(obj client.Object) error {
	return k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
}

// update applies mutate to the newest version of obj and writes it,
// reading again and retrying when the manager wrote in between (a status
// patch changes the resourceVersion at any time).
func update[T client.Object](g Gomega, obj T, mutate func(T)) {
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := get(obj); err != nil {
			return err
		}
		mutate(obj)
		return k8s.Update(context.Background(), obj)
	})).To(Succeed())
}

// publishReport publishes r as a buffer process would: signed with its
// Record's report key.
func publishReport(t *testing.T, r report.Report) {
	t.Helper()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(report.Subject(testPrefix, r.Namespace, r.Record, r.Pod))
	m.Data = data
	m.Header.Set(report.SignatureHeader, report.Sign(reportKeyOf(t, r.Namespace, r.Record), data))
	if err := natsConn.PublishMsg(m); err != nil {
		t.Fatalf("publishing report: %v", err)
	}
	if err := natsConn.Flush(); err != nil {
		t.Fatalf("flushing: %v", err)
	}
}

// testMasterKey is the suite manager's master key.
var testMasterKey = []byte("recbuf-test-master-key-0123456789abcdef")

// reportKeySecretOf is the name of the report key Secret of the Record
// name under the suite's master key.
func reportKeySecretOf(name string) string {
	return name + "-recbuf-report-key-" + report.MasterKeyFingerprint(testMasterKey)
}

// reportKeyOf waits for the report key Secret of the Record ns/name and
// returns its key, which must be the one the manager derives for the live
// Record (what the kubelet mounts is what the manager verifies with).
func reportKeyOf(t *testing.T, ns, name string) []byte {
	t.Helper()
	g := NewWithT(t)
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: reportKeySecretOf(name)}}
	g.Eventually(func() error { return get(sec) }, timeout, poll).Should(Succeed(), "the report key Secret of %s/%s", ns, name)
	rec := &recbufv1alpha1.Record{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	g.Expect(get(rec)).To(Succeed())
	g.Expect(sec.Data[report.KeyFile]).To(Equal(report.DeriveKey(testMasterKey, ns, name, string(rec.UID))),
		"the report key Secret of %s/%s holds its derived key", ns, name)
	return sec.Data[report.KeyFile]
}

// natsServerAddr is the host:port of the suite's NATS server.
func natsServerAddr() string { return strings.TrimPrefix(natsServer.ClientURL(), "nats://") }

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/controllers"
	"github.com/recbuf/recbuf/internal/natsconn"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/testutil/kubetest"
	"github.com/recbuf/recbuf/internal/testutil/sandbox"
)

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) != "" {
		// TestTheManagerExits... runs this test binary as the manager.
		os.Args = append([]string{"manager"}, strings.Fields(os.Getenv(runMainEnv))...)
		main()
		os.Exit(0)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(kubetest.LeakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o options)
	}{
		{
			name: "no flags give the documented defaults",
			check: func(t *testing.T, o options) {
				got := []string{o.bufferImage, o.bufferImagePullPolicy, o.natsURL, o.reportSubjectPrefix,
					o.reportInterval.String(), o.reportStaleAfter.String(), o.metricsAddr, strconv.FormatBool(o.metricsSecure), o.probeAddr,
					strconv.FormatBool(o.leaderElect), o.bufferMemoryCeiling.String()}
				want := []string{"recbuf/sidecar:dev", "IfNotPresent", "nats://nats.recbuf-system.svc:4222", "recbuf.stats",
					"5s", "30s", ":8443", "true", ":8081", "true", "1Gi"}
				if strings.Join(got, " ") != strings.Join(want, " ") || o.metricsCertPath != "" {
					t.Errorf("got %q and --metrics-cert-path %q, want %q and none", got, o.metricsCertPath, want)
				}
			},
		},
		{
			name: "every flag is read",
			args: []string{"--buffer-image=r/s:1", "--buffer-image-pull-policy=Never", "--nats-url=tls://n.ns:4222",
				"--report-subject-prefix=s", "--report-interval=1s", "--report-stale-after=3s", "--metrics-bind-address=0", "--metrics-secure=false",
				"--health-probe-bind-address=:9", "--leader-elect=false", "--leader-election-namespace=ops", "--zap-log-level=debug",
				"--nats-credentials-dir=/etc/recbuf/nats", "--report-master-key-file=/etc/recbuf/report-master-key/key", "--buffer-memory-ceiling=512Mi"},
			check: func(t *testing.T, o options) {
				if o.bufferImage != "r/s:1" || o.bufferImagePullPolicy != "Never" || o.natsURL != "tls://n.ns:4222" ||
					o.reportSubjectPrefix != "s" || o.reportInterval != time.Second || o.reportStaleAfter != 3*time.Second ||
					o.metricsAddr != "0" || o.metricsSecure || o.probeAddr != ":9" || o.leaderElect || o.leaderElectionNS != "ops" ||
					o.natsCredentialsDir != "/etc/recbuf/nats" || o.reportMasterKeyFile != "/etc/recbuf/report-master-key/key" ||
					o.bufferMemoryCeiling.Value() != 512<<20 {
					t.Errorf("got %+v, want every flag's value", o)
				}
				if len(o.deprecated) != 0 {
					t.Errorf("got deprecated flags %q, want none", o.deprecated)
				}
			},
		},
		{
			name: "network policies are off by default and let the namespace monitoring reach the metrics port",
			check: func(t *testing.T, o options) {
				got := o.networkPolicyConfig()
				want := controllers.NetworkPolicyConfig{MetricsFrom: &metav1.LabelSelector{
					MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}}}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("network policy config (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "network policies take a set-based selector of Prometheus's namespaces",
			args: []string{"--network-policies", "--metrics-from-namespace-selector=team in (obs,ops),!tenant"},
			check: func(t *testing.T, o options) {
				got := o.networkPolicyConfig()
				want := controllers.NetworkPolicyConfig{Enabled: true, MetricsFrom: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "team", Operator: metav1.LabelSelectorOpIn, Values: []string{"obs", "ops"}},
					{Key: "tenant", Operator: metav1.LabelSelectorOpDoesNotExist},
				}}}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("network policy config (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "an empty metrics namespace selector selects every namespace",
			args: []string{"--network-policies", "--metrics-from-namespace-selector="},
			check: func(t *testing.T, o options) {
				if got := o.networkPolicyConfig().MetricsFrom; got == nil || got.MatchLabels != nil || got.MatchExpressions != nil {
					t.Errorf("got selector %v, want the empty one", got)
				}
			},
		},
		{name: "a metrics namespace selector that does not parse is refused", args: []string{"--metrics-from-namespace-selector=a in b"},
			wantErr: `--metrics-from-namespace-selector "a in b": `},
		{name: "an unknown pull policy is refused", args: []string{"--buffer-image-pull-policy=Sometimes"},
			wantErr: `--buffer-image-pull-policy "Sometimes": want Always, IfNotPresent or Never`},
		{name: "a stale-after no longer than the interval is refused", args: []string{"--report-interval=10s", "--report-stale-after=10s"},
			wantErr: "--report-stale-after 10s: want more than --report-interval (10s)"},
		{name: "the report clock skew is two report intervals by default", check: func(t *testing.T, o options) {
			if o.reportMaxClockSkew != 10*time.Second {
				t.Errorf("got --report-max-clock-skew %s, want 10s", o.reportMaxClockSkew)
			}
		}},
		{name: "a report clock skew is read", args: []string{"--report-max-clock-skew=1m"}, check: func(t *testing.T, o options) {
			if o.reportMaxClockSkew != time.Minute {
				t.Errorf("got --report-max-clock-skew %s, want 1m", o.reportMaxClockSkew)
			}
		}},
		{name: "a report clock skew that is not positive is refused", args: []string{"--report-max-clock-skew=0s"},
			wantErr: "--report-max-clock-skew 0s: want a positive duration"},
		{name: "a NATS URL naming a bare Service is refused: every buffer pod would resolve it in its own namespace", args: []string{"--nats-url=nats://nats:4222"},
			wantErr: "--nats-url names nats:4222, a bare Service name"},
		{name: "allowed NATS servers naming a bare Service are refused", args: []string{"--allowed-nats-servers=tls://nats.nats.svc:4222,tls://nats"},
			wantErr: "--allowed-nats-servers names nats:4222, a bare Service name"},
		{name: "a NATS URL of a Service and its namespace is taken", args: []string{"--nats-url=nats://nats.nats:4222"}, check: func(t *testing.T, o options) {
			if o.natsURL != "nats://nats.nats:4222" {
				t.Errorf("got --nats-url %q, want nats://nats.nats:4222", o.natsURL)
			}
		}},
		{name: "an empty NATS URL is refused", args: []string{"--nats-url="}, wantErr: "--nats-url is required"},
		{name: "a memory ceiling that is no quantity is refused", args: []string{"--buffer-memory-ceiling=lots"},
			wantErr: `invalid value "lots" for flag -buffer-memory-ceiling: not a quantity`},
		{name: "a memory ceiling below what an empty buffer process needs is refused", args: []string{"--buffer-memory-ceiling=16Mi"},
			wantErr: "--buffer-memory-ceiling 16Mi: want at least 90Mi"},
		{name: "a report prefix with a wildcard is refused", args: []string{"--report-subject-prefix=recbuf.*"},
			wantErr: `--report-subject-prefix: report subject prefix "recbuf.*": want dot-separated tokens without wildcards`},
		{name: "a metrics certificate is read", args: []string{"--metrics-cert-path=/etc/recbuf/metrics-certs"},
			check: func(t *testing.T, o options) {
				if o.metricsCertPath != "/etc/recbuf/metrics-certs" || !o.metricsSecure {
					t.Errorf("got --metrics-cert-path %q, --metrics-secure %v; want the path, on HTTPS", o.metricsCertPath, o.metricsSecure)
				}
			}},
		{name: "a metrics certificate for plain HTTP is refused", args: []string{"--metrics-secure=false", "--metrics-cert-path=/certs"},
			wantErr: "--metrics-cert-path needs --metrics-secure"},
		{name: "a stray argument is refused", args: []string{"extra"}, wantErr: `unexpected arguments ["extra"]`},
		{name: "credentials inside the NATS URL are refused, naming the flag for them", args: []string{"--nats-url=nats://u:p@host:4222"},
			wantErr: "--nats-url nats://host:4222 carries credentials (user information before '@'): put them in a directory and pass --nats-credentials-dir"},
		{name: "a token inside one URL of a list is refused", args: []string{"--nats-url=nats://a:4222,nats://t0ken@b:4222"},
			wantErr: "--nats-url nats://a:4222,nats://b:4222 carries credentials"},
		{name: "credentials inside an allowed server are refused", args: []string{"--allowed-nats-servers=tls://u:p@other:4222"},
			wantErr: "--allowed-nats-servers tls://other:4222 carries credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o, err := parseFlags(fs, tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			tt.check(t, o)
		})
	}
}

// TestDeprecatedFlags checks that the old names of renamed flags still
// work for this release, and that each use logs a line naming the new flag.
func TestDeprecatedFlags(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		check    func(o options) bool
		wantLogs []string
	}{
		{
			name:     "--stats-subject-prefix still sets the report subject prefix",
			args:     []string{"--stats-subject-prefix=old.stats"},
			check:    func(o options) bool { return o.reportSubjectPrefix == "old.stats" },
			wantLogs: []string{`"flag"="--stats-subject-prefix" "use"="--report-subject-prefix"`},
		},
		{
			name:     "--status-interval still sets the report interval",
			args:     []string{"--status-interval=2s"},
			check:    func(o options) bool { return o.reportInterval == 2*time.Second },
			wantLogs: []string{`"flag"="--status-interval" "use"="--report-interval"`},
		},
		{
			name:     "--stale-after still sets the report stale-after",
			args:     []string{"--stale-after=1m"},
			check:    func(o options) bool { return o.reportStaleAfter == time.Minute },
			wantLogs: []string{`"flag"="--stale-after" "use"="--report-stale-after"`},
		},
		{
			name:  "an old and a new name of one flag act as a repeated flag: the last one wins",
			args:  []string{"--report-interval=1s", "--status-interval=3s", "--stale-after=9s", "--report-stale-after=8s"},
			check: func(o options) bool { return o.reportInterval == 3*time.Second && o.reportStaleAfter == 8*time.Second },
			wantLogs: []string{`"flag"="--stale-after" "use"="--report-stale-after"`,
				`"flag"="--status-interval" "use"="--report-interval"`},
		},
		{
			name:     "--sidecar-image and --sidecar-image-pull-policy still set the buffer image",
			args:     []string{"--sidecar-image=r/b:2", "--sidecar-image-pull-policy=Always"},
			check:    func(o options) bool { return o.bufferImage == "r/b:2" && o.bufferImagePullPolicy == "Always" },
			wantLogs: []string{`"flag"="--sidecar-image" "use"="--buffer-image"`, `"flag"="--sidecar-image-pull-policy" "use"="--buffer-image-pull-policy"`},
		},
		{
			name:  "the new names log nothing",
			args:  []string{"--report-subject-prefix=p", "--report-interval=1s", "--report-stale-after=3s"},
			check: func(o options) bool { return o.reportSubjectPrefix == "p" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("manager", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o, err := parseFlags(fs, tt.args)
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !tt.check(o) {
				t.Errorf("got %+v, want the values of %q", o, tt.args)
			}
			var logs []string
			o.logDeprecated(funcr.New(func(prefix, args string) { logs = append(logs, args) }, funcr.Options{}))
			if len(logs) != len(tt.wantLogs) {
				t.Fatalf("got log lines %q, want %d", logs, len(tt.wantLogs))
			}
			for i, want := range tt.wantLogs {
				if !strings.Contains(logs[i], want) || !strings.Contains(logs[i], "Deprecated flag") {
					t.Errorf("got log line %q, want a deprecation with %s", logs[i], want)
				}
			}
		})
	}
}

// TestUsageHidesDeprecatedFlags checks -h: the report flags under their
// new names, the old names nowhere.
func TestUsageHidesDeprecatedFlags(t *testing.T) {
	var out strings.Builder
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.SetOutput(&out)
	if _, err := parseFlags(fs, []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got error %v, want flag.ErrHelp", err)
	}
	usage := out.String()
	for _, want := range []string{"Usage of manager:", "-report-subject-prefix string", "-report-interval duration",
		"-report-stale-after duration", "(default 30s)", "-buffer-image string", "-zap-log-level"} {
		if !strings.Contains(usage, want) {
			t.Errorf("got usage without %q:\n%s", want, usage)
		}
	}
	for old := range deprecatedFlags {
		// -stale-after is a suffix of -report-stale-after: look for entries.
		if regexp.MustCompile(`(?m)^\s*-`+regexp.QuoteMeta(old)+`\b`).MatchString(usage) || strings.Contains(usage, "--"+old) {
			t.Errorf("got usage with the deprecated -%s:\n%s", old, usage)
		}
	}
}

// TestBadNATSCredentialsStopTheManager checks that run reads the
// credentials directory before anything else: no API server is needed to
// see it refused.
func TestBadNATSCredentialsStopTheManager(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "username"), []byte("manager"), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o, err := parseFlags(fs, []string{"--nats-credentials-dir=" + dir})
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	if err := run(context.Background(), &rest.Config{Host: "http://127.0.0.1:1"}, o); !errors.Is(err, natsconn.ErrInvalidCredentials) {
		t.Errorf("got error %v, want one wrapping natsconn.ErrInvalidCredentials", err)
	}
}

// TestTheManagerRunsWithoutNATS starts the manager as main does, against a
// real API server and a NATS URL nobody listens on: it is healthy and
// ready, reconciles Records, and says in their status that it cannot see
// their reports.
func TestTheManagerRunsWithoutNATS(t *testing.T) {
	g := NewWithT(t)
	cfg := startEnvtest(t)

	probeAddr := "127.0.0.1:" + strconv.Itoa(sandbox.FreePort(t))
	masterKeyFile := filepath.Join(t.TempDir(), "key")
	masterKey := []byte("a master key of thirty-two bytes or more, for this test")
	g.Expect(os.WriteFile(masterKeyFile, masterKey, 0o600)).To(Succeed())
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o, err := parseFlags(fs, []string{
		"--report-master-key-file=" + masterKeyFile,
		"--nats-url=nats://127.0.0.1:" + strconv.Itoa(sandbox.FreePort(t)),
		"--metrics-bind-address=0", "--health-probe-bind-address=" + probeAddr,
		"--leader-election-namespace=default", "--report-interval=100ms", "--report-stale-after=1s",
	})
	g.Expect(err).NotTo(HaveOccurred())
	o.skipControllerNameValidation = true

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, o) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			g.Eventually(done, 30*time.Second).Should(Receive(BeNil()))
		}
	}
	t.Cleanup(stop)

	for _, path := range []string{"/healthz", "/readyz"} {
		g.Eventually(func() (int, error) {
			select {
			case err := <-done:
				stopped = true
				return 0, StopTrying("the manager exited").Wrap(err)
			default:
			}
			resp, err := http.Get("http://" + probeAddr + path)
			if err != nil {
				return 0, err
			}
			defer func() { _ = resp.Body.Close() }()
			return resp.StatusCode, nil
		}, 20*time.Second, 50*time.Millisecond).Should(Equal(http.StatusOK), path)
	}

	scheme := runtime.NewScheme()
	g.Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	g.Expect(recbufv1alpha1.AddToScheme(scheme)).To(Succeed())
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	rec := &recbufv1alpha1.Record{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "door"},
		Spec:       recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSingleLatest}},
	}
	g.Expect(k8s.Create(context.Background(), rec)).To(Succeed())
	g.Eventually(func(g Gomega) {
		var d appsv1.Deployment
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "door-recbuf"}, &d)).To(Succeed())
		g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("recbuf/sidecar:dev"))
		g.Expect(d.Spec.Template.Spec.Containers[0].ImagePullPolicy).To(Equal(corev1.PullIfNotPresent))
		// The report flags reach the pods through the Record's ConfigMap.
		var cm corev1.ConfigMap
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "door-recbuf"}, &cm)).To(Succeed())
		g.Expect(cm.Data).To(HaveKeyWithValue("reports.json", `{"interval":"100ms","subjectPrefix":"recbuf.stats"}`))
		// The report key Secret is named after the master key in the file,
		// and holds the key derived from it for this Record.
		keySecret := "door-recbuf-report-key-" + report.MasterKeyFingerprint(masterKey)
		g.Expect(d.Spec.Template.Spec.Volumes).To(ContainElement(HaveField("VolumeSource.Secret.SecretName", keySecret)))
		var sec corev1.Secret
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: keySecret}, &sec)).To(Succeed())
		g.Expect(sec.Data["key"]).To(Equal(report.DeriveKey(masterKey, "default", "door", string(rec.UID))))
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(rec), rec)).To(Succeed())
		c := meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionNATSConnected)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(recbufv1alpha1.ReasonManagerDisconnected))
	}, 20*time.Second, 50*time.Millisecond).Should(Succeed())

	var lease coordinationv1.Lease
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: "default", Name: "recbuf.dev"}, &lease)).To(Succeed())
	g.Expect(ptr.Deref(lease.Spec.HolderIdentity, "")).NotTo(BeEmpty(), "the manager leads")

	stop()
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(&lease), &lease)).To(Succeed())
	g.Expect(ptr.Deref(lease.Spec.HolderIdentity, "")).To(BeEmpty(), "the Lease is released on the way out")
}

// runMainEnv makes the test binary run main with the flags it holds.
const runMainEnv = "RECBUF_TEST_RUN_MANAGER_MAIN"

// TestTheManagerExitsOnCredentialsInTheNATSURL runs the manager's main as
// a process: with credentials inside --nats-url it exits at once with
// status 2 and a message naming --nats-credentials-dir, and the password
// appears nowhere in what it prints.
func TestTheManagerExitsOnCredentialsInTheNATSURL(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), runMainEnv+"=--nats-url=nats://u:s3cret-pw@host:4222")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("got %v (output %q), want exit status 2", err, out)
	}
	if !strings.Contains(string(out), "--nats-credentials-dir") || !strings.Contains(string(out), "--nats-url nats://host:4222 carries credentials") {
		t.Errorf("got output %q, want the error naming --nats-url and --nats-credentials-dir", out)
	}
	if strings.Contains(string(out), "s3cret-pw") {
		t.Errorf("got output %q, which prints the password", out)
	}
}

// TestReportMasterKey: the master key is the file's bytes, at least 32;
// without a file the manager refuses to run in a cluster, and elsewhere
// makes an ephemeral key and warns that other processes' pods' reports are
// refused. The key itself is never logged.
func TestReportMasterKey(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	key := []byte(" 0123456789abcdef0123456789abcdef\n")
	short := filepath.Join(dir, "short")
	for path, content := range map[string][]byte{good: key, short: []byte("0123456789abcdef0123456789abcde")} {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var logs []string
	log := funcr.New(func(prefix, args string) { logs = append(logs, prefix+" "+args) }, funcr.Options{})

	for _, inCluster := range []bool{false, true} {
		got, err := reportMasterKey(good, inCluster, log)
		if err != nil || string(got) != string(key) {
			t.Errorf("in cluster %v: got %q, %v; want the file's bytes as they are", inCluster, got, err)
		}
	}
	if _, err := reportMasterKey(short, false, log); err == nil || !strings.Contains(err.Error(), "--report-master-key-file "+short+" holds 31 bytes: want at least 32") {
		t.Errorf("got error %v, want one naming the flag and the size", err)
	}
	if _, err := reportMasterKey(filepath.Join(dir, "missing"), false, log); err == nil || !strings.Contains(err.Error(), "reading --report-master-key-file") {
		t.Errorf("got error %v, want one naming the flag", err)
	}
	if _, err := reportMasterKey("", true, log); err == nil || !strings.Contains(err.Error(), "--report-master-key-file is required when the manager runs in a cluster") {
		t.Errorf("got error %v, want the flag required in a cluster", err)
	}
	if len(logs) != 0 {
		t.Errorf("got log lines %q, want none", logs)
	}

	a, err := reportMasterKey("", false, log)
	if err != nil || len(a) != report.KeySize {
		t.Fatalf("got %d bytes, %v; want an ephemeral key of %d", len(a), err, report.KeySize)
	}
	b, err := reportMasterKey("", false, log)
	if err != nil || string(a) == string(b) {
		t.Errorf("got the same ephemeral key twice (%v), want a random one each time", err)
	}
	if len(logs) != 2 || !strings.Contains(logs[0], "WARNING: no --report-master-key-file") ||
		!strings.Contains(logs[0], "reports from buffer pods started by another manager process are refused") ||
		!strings.Contains(logs[0], report.MasterKeyFingerprint(a)) {
		t.Errorf("got log lines %q, want one warning per ephemeral key, with its fingerprint", logs)
	}
	for _, l := range logs {
		for _, k := range [][]byte{a, b} {
			if strings.Contains(l, string(k)) || strings.Contains(l, fmt.Sprintf("%x", k)) {
				t.Errorf("log line %q carries the key", l)
			}
		}
	}
}

// TestTheManagerExitsWithoutAMasterKeyInACluster: run refuses to start in
// a cluster without --report-master-key-file, before it needs an API
// server.
func TestTheManagerExitsWithoutAMasterKeyInACluster(t *testing.T) {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	o, err := parseFlags(fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.inCluster = func() bool { return true }
	if err := run(context.Background(), &rest.Config{Host: "http://127.0.0.1:1"}, o); err == nil || !strings.Contains(err.Error(), "--report-master-key-file is required") {
		t.Errorf("got error %v, want --report-master-key-file required", err)
	}
}

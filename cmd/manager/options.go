package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/recbuf/recbuf/controllers"
	"github.com/recbuf/recbuf/internal/natsconn"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/sizing"
	"github.com/recbuf/recbuf/internal/streams"
)

// options are the manager's flags.
type options struct {
	bufferImage             string
	bufferImagePullPolicy   string
	natsURL                 string
	natsCredentialsDir      string
	allowedNATSServers      string
	allowPlaintextNATSCreds bool
	reportSubjectPrefix     string
	reportInterval          time.Duration
	reportStaleAfter        time.Duration
	reportMaxClockSkew      time.Duration
	reportMasterKeyFile     string
	bufferMemoryCeiling     resource.Quantity
	streamMaxBytes          resource.Quantity
	namespaceStreamMaxBytes resource.Quantity
	networkPolicies         bool
	consumerAuthOptIn       bool
	metricsFrom             string
	metricsAddr             string
	metricsSecure           bool
	metricsCertPath         string
	profiling               bool
	probeAddr               string
	leaderElect             bool
	leaderElectionNS        string
	sidecarInjection        bool
	webhookPort             int
	webhookCertDir          string
	webhookCerts            string
	webhookCertSecret       string
	webhookService          string
	webhookConfiguration    string
	webhookCertValidity     time.Duration
	webhookClientCAFile     string
	webhookClientNames      string
	// webhookExtraDNSNames are more names for the webhook's serving
	// certificate. No flag: tests reach the webhook at localhost.
	webhookExtraDNSNames []string
	zap                  zap.Options
	// deprecated lists the deprecated flag names given, for
	// logDeprecated once logging is set up.
	deprecated []string

	// inCluster says whether the manager runs in a Kubernetes pod, where
	// --report-master-key-file is required (runningInCluster; tests set it).
	inCluster func() bool

	// skipControllerNameValidation lets one process run the manager more
	// than once (tests with -count); controller-runtime otherwise refuses a
	// second controller named "record". No flag: main runs it once.
	skipControllerNameValidation bool
}

// defaultMetricsFrom is --metrics-from-namespace-selector's default: the
// namespace monitoring, where the Prometheus Operator's and kube-prometheus'
// guides install Prometheus.
const defaultMetricsFrom = corev1.LabelMetadataName + "=monitoring"

// deprecatedFlags maps the old names of renamed flags to their new ones.
// They keep working for one release (v0.2 removes them): they set the same
// value as the new flag (the last one given wins, as for a repeated flag),
// are left out of -h, and each use logs a line naming the new flag.
var deprecatedFlags = map[string]string{
	"stats-subject-prefix": "report-subject-prefix",
	"status-interval":      "report-interval",
	"stale-after":          "report-stale-after",
	// "sidecar" names the buffer process injected into an app's pod only
	// (README's glossary); the image runs in both placements.
	"sidecar-image":             "buffer-image",
	"sidecar-image-pull-policy": "buffer-image-pull-policy",
}

// parseFlags registers the manager's flags (and zap's logging flags) on fs
// and parses args.
func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	o := options{inCluster: runningInCluster}
	fs.StringVar(&o.bufferImage, "buffer-image", "recbuf/sidecar:dev", "Image of the buffer process (cmd/sidecar) run for each Record, in its own pods and as an injected sidecar.")
	fs.StringVar(&o.bufferImagePullPolicy, "buffer-image-pull-policy", string(corev1.PullIfNotPresent), "Pull policy of the buffer process image: Always, IfNotPresent or Never.")
	fs.StringVar(&o.natsURL, "nats-url", DefaultNATSURL, "NATS server(s) of Records that name none, and of the manager's own report subscription. Every buffer pod connects to it from its own namespace: a bare Service name (nats://nats:4222) is refused.")
	fs.StringVar(&o.natsCredentialsDir, "nats-credentials-dir", "", "Directory (a mounted Secret) with any of creds, token, username, password, ca.crt, tls.crt, tls.key for the manager's own NATS connection; the buffer processes' --nats-credentials-dir conventions.")
	fs.StringVar(&o.allowedNATSServers, "allowed-nats-servers", "", "Comma-separated NATS servers (URLs or host:port) that a Record naming spec.source.nats.credentialsSecretRef may connect to; others make it Stalled (NATSServerNotAllowed). Empty: the servers of --nats-url only.")
	fs.BoolVar(&o.allowPlaintextNATSCreds, "allow-plaintext-nats-credentials", false, "Let a Record send its credentials over plaintext nats:// or ws:// to an allowed server other than --nats-url's; otherwise it is Stalled (PlaintextNATSCredentials).")
	fs.StringVar(&o.reportSubjectPrefix, "report-subject-prefix", report.DefaultPrefix, "Subject prefix buffer processes publish their counter reports under.")
	fs.DurationVar(&o.reportInterval, "report-interval", report.DefaultInterval, "How often buffer processes report, and at most how often a Record's status counters are written.")
	fs.DurationVar(&o.reportStaleAfter, "report-stale-after", report.DefaultStaleAfter, "A Record whose pods sent no report for this long is marked stale (Reporting=False). Several report intervals.")
	fs.DurationVar(&o.reportMaxClockSkew, "report-max-clock-skew", report.DefaultMaxClockSkew, "A report whose own time is further than this from the manager's clock, either way, is refused (recbuf_reports_rejected_total{reason=\"clock_skew\"}): how far nodes' clocks may disagree, and how late a captured report can be replayed to a manager that has just started. Two report intervals by default.")
	fs.StringVar(&o.reportMasterKeyFile, "report-master-key-file", "", "File with the master key (at least 32 bytes, random; a mounted Secret) every Record's report key is derived from. Required in a cluster; without it, outside one, an ephemeral key is generated and reports from buffer pods another manager process started are refused.")
	o.bufferMemoryCeiling = *resource.NewQuantity(sizing.DefaultCeiling, resource.BinarySI)
	fs.Var(quantityFlag{&o.bufferMemoryCeiling}, "buffer-memory-ceiling", "Largest memory limit a buffer container gets by default, a quantity such as 1Gi; a Record whose declared worst case needs more, and that sets no resources of its own, is Stalled (InsufficientMemory).")
	o.streamMaxBytes = *resource.NewQuantity(streams.DefaultRingMaxBytes, resource.BinarySI)
	fs.Var(quantityFlag{&o.streamMaxBytes}, "stream-max-bytes", "max_bytes of the JetStream stream of a durable SpmcRing without spec.buffer.maxBytes, a quantity such as 8Mi: a standalone NATS server reserves it from its store, and the stream discards its own oldest values beyond it (docs/persistence.md).")
	fs.Var(quantityFlag{&o.namespaceStreamMaxBytes}, "namespace-stream-max-bytes", "Most the JetStream streams of one namespace's durable Records may reserve together, a quantity such as 256Mi; 0 is no limit. A Record whose stream would go beyond it is Stalled (StreamQuotaExceeded). A Namespace's annotation recbuf.dev/stream-max-bytes overrides it there.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "Address of the manager's Prometheus metrics endpoint (\"0\" disables it).")
	fs.BoolVar(&o.metricsSecure, "metrics-secure", true, "Serve the metrics endpoint over HTTPS to bearer tokens whose user may get the non-resource URL /metrics (TokenReview and SubjectAccessReview); false serves plain HTTP to anyone, for development only.")
	fs.StringVar(&o.metricsCertPath, "metrics-cert-path", "", "Directory with the metrics endpoint's certificate, "+metricsCertFile+" and "+metricsKeyFile+" (a mounted kubernetes.io/tls Secret), reloaded when they change. Empty: a self-signed certificate made at start.")
	fs.BoolVar(&o.profiling, "profiling", false, "Serve Go's runtime profiles (net/http/pprof) under /debug/pprof/ on the metrics endpoint, behind its authentication: with --metrics-secure, to bearer tokens whose user may get the non-resource URLs /debug/pprof/* (docs/operations.md#profiles).")
	fs.BoolVar(&o.networkPolicies, "network-policies", false, "Give every Record a NetworkPolicy: its consumer port open only to the pods of spec.consumers.from (default: the Record's own namespace), its metrics port only to --metrics-from-namespace-selector; when off, delete the ones the manager made. Takes effect only where the network plugin enforces NetworkPolicy.")
	fs.BoolVar(&o.consumerAuthOptIn, "consumer-authentication-opt-in", false, "Let Records authenticate their consumers (spec.consumers.authentication ServiceAccountToken, whose buffer pods get system:auth-delegator) only in Namespaces the cluster admin annotated recbuf.dev/consumer-authentication=Allowed; elsewhere such a Record is Stalled (ConsumerAuthenticationNotAllowed).")
	fs.StringVar(&o.metricsFrom, "metrics-from-namespace-selector", defaultMetricsFrom, "Label selector of the namespaces whose pods may reach the buffer pods' metrics port under --network-policies: where Prometheus runs. Empty selects every namespace.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "Elect a leader among manager replicas (Lease recbuf.dev), so that one reconciles at a time.")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the manager's own namespace, when run in a cluster).")
	fs.BoolVar(&o.sidecarInjection, "sidecar-injection", false, "Serve the mutating admission webhook that injects Records' buffer processes into the pods that ask (label recbuf.dev/inject=true, annotation recbuf.dev/records; docs/sidecar.md).")
	fs.IntVar(&o.webhookPort, "webhook-port", 9443, "Port of the sidecar injection webhook (HTTPS).")
	fs.StringVar(&o.webhookCertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs", "Directory with the webhook's serving certificate, tls.crt and tls.key (a mounted kubernetes.io/tls Secret), reloaded when they change.")
	fs.StringVar(&o.webhookCerts, "webhook-certs", webhookCertsSelf, "Who makes the webhook's certificates: self (the manager makes a CA and a serving certificate in --webhook-cert-secret, rotates them, and keeps --webhook-configuration's caBundle current) or external (cert-manager, say, mounts them and injects the caBundle).")
	fs.StringVar(&o.webhookCertSecret, "webhook-cert-secret", "", "NAMESPACE/NAME of the Secret the manager keeps the webhook's CA and certificate in, with --webhook-certs=self; it must exist (the chart creates it empty) and be mounted at --webhook-cert-dir.")
	fs.StringVar(&o.webhookService, "webhook-service", "", "NAMESPACE/NAME of the webhook's Service, whose DNS names the serving certificate is for, with --webhook-certs=self.")
	fs.StringVar(&o.webhookConfiguration, "webhook-configuration", "", "Name of the MutatingWebhookConfiguration whose caBundle the manager keeps current, with --webhook-certs=self.")
	fs.DurationVar(&o.webhookCertValidity, "webhook-cert-validity", 365*24*time.Hour, "Validity of the webhook's serving certificate, with --webhook-certs=self: it is renewed when a quarter of it is left; the CA lasts four times as long.")
	fs.StringVar(&o.webhookClientCAFile, "webhook-client-ca-file", "", "PEM file with the CA certificate(s) that sign the client certificate the API server presents to webhooks: the webhook then refuses, in the TLS handshake, every caller without a certificate they signed (docs/security.md#the-webhooks-callers). Empty: the webhook does not authenticate its callers, and anyone who can reach its port can read Records' configuration in any namespace from its answers.")
	fs.StringVar(&o.webhookClientNames, "webhook-client-names", "", "Comma-separated names (the common name, or a DNS name) the API server's client certificate must have, with --webhook-client-ca-file. Empty: any certificate the CA signed.")
	for old, current := range deprecatedFlags {
		f := fs.Lookup(current)
		fs.Var(f.Value, old, "Deprecated: use --"+current+".")
	}
	o.zap.BindFlags(fs)
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	// Visit walks the flags given, in name order: the lines are stable.
	fs.Visit(func(f *flag.Flag) {
		if _, ok := deprecatedFlags[f.Name]; ok {
			o.deprecated = append(o.deprecated, f.Name)
		}
	})
	return o, o.validate()
}

// usage is flag's default usage message without the deprecated flags.
// flag has no hidden flags, so the deprecated ones' entries are cut out of
// PrintDefaults' output: each entry starts with "  -name".
func usage(fs *flag.FlagSet) {
	var all bytes.Buffer
	out := fs.Output()
	fs.SetOutput(&all)
	fs.PrintDefaults()
	fs.SetOutput(out)
	var shown strings.Builder
	shown.WriteString("Usage of " + fs.Name() + ":\n")
	keep := true
	for line := range strings.Lines(all.String()) {
		if name, ok := strings.CutPrefix(line, "  -"); ok {
			name, _, _ = strings.Cut(name, " ")
			name, _, _ = strings.Cut(name, "\t")
			_, deprecated := deprecatedFlags[strings.TrimSpace(name)]
			keep = !deprecated
		}
		if keep {
			shown.WriteString(line)
		}
	}
	// As flag's own usage, a failed write to the output is not reported.
	_, _ = io.WriteString(out, shown.String())
}

// logDeprecated logs one line per deprecated flag that was given, naming
// the flag to use instead.
func (o options) logDeprecated(log logr.Logger) {
	for _, old := range o.deprecated {
		log.Info("Deprecated flag given; it goes in the next release", "flag", "--"+old, "use", "--"+deprecatedFlags[old])
	}
}

func (o options) validate() error {
	var errs []error
	switch corev1.PullPolicy(o.bufferImagePullPolicy) {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, fmt.Errorf("--buffer-image-pull-policy %q: want Always, IfNotPresent or Never", o.bufferImagePullPolicy))
	}
	if o.bufferImage == "" {
		errs = append(errs, errors.New("--buffer-image is required"))
	}
	if o.natsURL == "" {
		errs = append(errs, errors.New("--nats-url is required"))
	} else if _, err := natsconn.ParseServers(o.natsURL); errors.Is(err, natsconn.ErrURLCredentials) {
		// The URL is logged, shown in conditions and passed to every buffer
		// pod's arguments: a password in it would be everywhere.
		errs = append(errs, fmt.Errorf("--nats-url %w: put them in a directory and pass --nats-credentials-dir", err))
	} else if err != nil {
		errs = append(errs, fmt.Errorf("--nats-url: %w", err))
	} else if err := noRelativeServers("--nats-url", o.natsURL); err != nil {
		errs = append(errs, err)
	}
	if o.allowedNATSServers != "" {
		if _, err := natsconn.ParseServers(o.allowedNATSServers); err != nil {
			errs = append(errs, fmt.Errorf("--allowed-nats-servers %w", err))
		} else if err := noRelativeServers("--allowed-nats-servers", o.allowedNATSServers); err != nil {
			errs = append(errs, err)
		}
	}
	if o.metricsCertPath != "" && !o.metricsSecure {
		errs = append(errs, errors.New("--metrics-cert-path needs --metrics-secure: plain HTTP serves no certificate"))
	}
	if err := report.ValidPrefix(o.reportSubjectPrefix); err != nil {
		errs = append(errs, fmt.Errorf("--report-subject-prefix: %w", err))
	}
	if o.reportInterval <= 0 {
		errs = append(errs, fmt.Errorf("--report-interval %s: want a positive duration", o.reportInterval))
	}
	if o.reportStaleAfter <= o.reportInterval {
		errs = append(errs, fmt.Errorf("--report-stale-after %s: want more than --report-interval (%s), or every Record looks stale between two reports", o.reportStaleAfter, o.reportInterval))
	}
	if o.reportMaxClockSkew <= 0 {
		errs = append(errs, fmt.Errorf("--report-max-clock-skew %s: want a positive duration", o.reportMaxClockSkew))
	}
	// Below what any buffer process needs, every Record without resources
	// of its own would be Stalled.
	if least := sizing.MinLimit(); o.bufferMemoryCeiling.Value() < least {
		errs = append(errs, fmt.Errorf("--buffer-memory-ceiling %s: want at least %s, what a buffer process needs before it holds a value", o.bufferMemoryCeiling.String(), sizing.Format(least)))
	}
	if o.streamMaxBytes.Value() <= 0 {
		errs = append(errs, fmt.Errorf("--stream-max-bytes %s: want a positive quantity, or a durable ring's stream could fill the NATS store for every tenant", o.streamMaxBytes.String()))
	}
	if o.namespaceStreamMaxBytes.Sign() < 0 {
		errs = append(errs, fmt.Errorf("--namespace-stream-max-bytes %s: want 0 (no limit) or a positive quantity", o.namespaceStreamMaxBytes.String()))
	}
	if err := o.validateWebhook(); err != nil {
		errs = append(errs, err)
	}
	if _, err := metav1.ParseToLabelSelector(o.metricsFrom); err != nil {
		errs = append(errs, fmt.Errorf("--metrics-from-namespace-selector %q: %w", o.metricsFrom, err))
	}
	return errors.Join(errs...)
}

// networkPolicyConfig is the reconciler's NetworkPolicyConfig; the selector
// was checked by validate.
func (o options) networkPolicyConfig() controllers.NetworkPolicyConfig {
	sel, _ := metav1.ParseToLabelSelector(o.metricsFrom)
	// As the API server stores it: no empty lists or maps.
	if len(sel.MatchLabels) == 0 {
		sel.MatchLabels = nil
	}
	if len(sel.MatchExpressions) == 0 {
		sel.MatchExpressions = nil
	}
	for i, req := range sel.MatchExpressions {
		if len(req.Values) == 0 {
			sel.MatchExpressions[i].Values = nil
		}
	}
	return controllers.NetworkPolicyConfig{Enabled: o.networkPolicies, MetricsFrom: sel}
}

// DefaultNATSURL is --nats-url's default: the Service nats of the
// namespace config/ installs the manager in, fully qualified. The chart
// passes its own (the release namespace's).
const DefaultNATSURL = "nats://nats.recbuf-system.svc:4222"

// noRelativeServers refuses a list (parsed before) naming a bare Service:
// the manager would resolve it in its own namespace, each buffer pod in
// the Record's, so that it names another server in every namespace, and a
// Record naming it would pass for the manager's own server.
func noRelativeServers(flag, list string) error {
	servers, _ := natsconn.ParseServers(list)
	if s, ok := natsconn.FirstRelative(servers); ok {
		host, _, _ := strings.Cut(s.Addr, ":")
		return fmt.Errorf("%s names %s, a bare Service name, which each buffer pod resolves in its own namespace: name it with its namespace, as %s.<namespace>.svc", flag, s.Addr, host)
	}
	return nil
}

// runningInCluster reports whether the process runs in a Kubernetes pod:
// the kubelet sets KUBERNETES_SERVICE_HOST and _PORT in every container
// (client-go's rest.InClusterConfig looks for the same).
func runningInCluster() bool {
	return os.Getenv("KUBERNETES_SERVICE_HOST") != "" && os.Getenv("KUBERNETES_SERVICE_PORT") != ""
}

// reportMasterKey is the master key the Records' report keys are derived
// from: the file's bytes as they are (at least report.MinKeySize of them).
// Without a file it is an error in a cluster, and elsewhere (a manager run
// from a laptop against a dev cluster) a random key that lives as long as
// the process, with a warning: the report key Secrets carry the key's
// fingerprint, so this process makes its own Secrets and rolls the buffer
// pods onto them, and reports signed under another process's key (pods it
// has not rolled yet, or a manager in the cluster) are refused.
func reportMasterKey(path string, inCluster bool, log logr.Logger) ([]byte, error) {
	if path == "" {
		if inCluster {
			return nil, errors.New("--report-master-key-file is required when the manager runs in a cluster (the chart mounts the Secret <release>-report-master-key): " +
				"every manager replica and restart must derive the same report keys")
		}
		key := make([]byte, report.KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generating an ephemeral report master key: %w", err)
		}
		log.Info("WARNING: no --report-master-key-file: using an ephemeral master key for this process only. "+
			"Buffer pods are rolled onto report keys derived from it; reports from buffer pods started by another manager process are refused (bad_signature) until then, "+
			"and after this process exits. Pass --report-master-key-file outside development.",
			"reportKeyFingerprint", report.MasterKeyFingerprint(key))
		return key, nil
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --report-master-key-file: %w", err)
	}
	if len(key) < report.MinKeySize {
		return nil, fmt.Errorf("--report-master-key-file %s holds %d bytes: want at least %d random bytes", path, len(key), report.MinKeySize)
	}
	return key, nil
}

// quantityFlag is a flag.Value for a resource.Quantity ("1Gi").
type quantityFlag struct{ q *resource.Quantity }

func (f quantityFlag) String() string {
	if f.q == nil {
		return ""
	}
	return f.q.String()
}

func (f quantityFlag) Set(s string) error {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("not a quantity (such as 1Gi or 512Mi): %w", err)
	}
	*f.q = q
	return nil
}

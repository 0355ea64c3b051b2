package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/recbuf/recbuf/internal/report"
)

// options are the manager's flags.
type options struct {
	sidecarImage           string
	sidecarImagePullPolicy string
	natsURL                string
	natsCredentialsDir     string
	reportSubjectPrefix    string
	reportInterval         time.Duration
	reportStaleAfter       time.Duration
	metricsAddr            string
	probeAddr              string
	leaderElect            bool
	leaderElectionNS       string
	zap                    zap.Options
	// deprecated lists the deprecated flag names given, for
	// logDeprecated once logging is set up.
	deprecated []string

	// skipControllerNameValidation lets one process run the manager more
	// than once (tests with -count); controller-runtime otherwise refuses a
	// second controller named "record". No flag: main runs it once.
	skipControllerNameValidation bool
}

// deprecatedFlags maps the old names of renamed flags to their new ones.
// They keep working for one release (v0.2 removes them): they set the same
// value as the new flag (the last one given wins, as for a repeated flag),
// are left out of -h, and each use logs a line naming the new flag.
var deprecatedFlags = map[string]string{
	"stats-subject-prefix": "report-subject-prefix",
	"status-interval":      "report-interval",
	"stale-after":          "report-stale-after",
}

// parseFlags registers the manager's flags (and zap's logging flags) on fs
// and parses args.
func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	fs.StringVar(&o.sidecarImage, "sidecar-image", "recbuf/sidecar:dev", "Image of the buffer process (cmd/sidecar) run for each Record.")
	fs.StringVar(&o.sidecarImagePullPolicy, "sidecar-image-pull-policy", string(corev1.PullIfNotPresent), "Pull policy of the buffer process image: Always, IfNotPresent or Never.")
	fs.StringVar(&o.natsURL, "nats-url", "nats://nats:4222", "NATS server(s) of Records that name none, and of the manager's own report subscription.")
	fs.StringVar(&o.natsCredentialsDir, "nats-credentials-dir", "", "Directory (a mounted Secret) with any of creds, token, username, password, ca.crt, tls.crt, tls.key for the manager's own NATS connection; the buffer processes' --nats-credentials-dir conventions.")
	fs.StringVar(&o.reportSubjectPrefix, "report-subject-prefix", report.DefaultPrefix, "Subject prefix buffer processes publish their counter reports under.")
	fs.DurationVar(&o.reportInterval, "report-interval", report.DefaultInterval, "How often buffer processes report, and at most how often a Record's status counters are written.")
	fs.DurationVar(&o.reportStaleAfter, "report-stale-after", report.DefaultStaleAfter, "A Record whose pods sent no report for this long is marked stale (Reporting=False). Several report intervals.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address of the manager's Prometheus metrics endpoint (\"0\" disables it).")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "Elect a leader among manager replicas (Lease recbuf.dev), so that one reconciles at a time.")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the manager's own namespace, when run in a cluster).")
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
	switch corev1.PullPolicy(o.sidecarImagePullPolicy) {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, fmt.Errorf("--sidecar-image-pull-policy %q: want Always, IfNotPresent or Never", o.sidecarImagePullPolicy))
	}
	if o.sidecarImage == "" {
		errs = append(errs, errors.New("--sidecar-image is required"))
	}
	if o.natsURL == "" {
		errs = append(errs, errors.New("--nats-url is required"))
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
	return errors.Join(errs...)
}

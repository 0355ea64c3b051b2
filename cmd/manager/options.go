package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

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
	statsSubjectPrefix     string
	statusInterval         time.Duration
	staleAfter             time.Duration
	metricsAddr            string
	probeAddr              string
	leaderElect            bool
	leaderElectionNS       string
	zap                    zap.Options

	// skipControllerNameValidation lets one process run the manager more
	// than once (tests with -count); controller-runtime otherwise refuses a
	// second controller named "record". No flag: main runs it once.
	skipControllerNameValidation bool
}

// parseFlags registers the manager's flags (and zap's logging flags) on fs
// and parses args.
func parseFlags(fs *flag.FlagSet, args []string) (options, error) {
	var o options
	fs.StringVar(&o.sidecarImage, "sidecar-image", "recbuf/sidecar:dev", "Image of the buffer process (cmd/sidecar) run for each Record.")
	fs.StringVar(&o.sidecarImagePullPolicy, "sidecar-image-pull-policy", string(corev1.PullIfNotPresent), "Pull policy of the buffer process image: Always, IfNotPresent or Never.")
	fs.StringVar(&o.natsURL, "nats-url", "nats://nats:4222", "NATS server(s) of Records that name none, and of the manager's own report subscription.")
	fs.StringVar(&o.natsCredentialsDir, "nats-credentials-dir", "", "Directory (a mounted Secret) with any of creds, token, username, password, ca.crt, tls.crt, tls.key for the manager's own NATS connection; the buffer processes' --nats-credentials-dir conventions.")
	fs.StringVar(&o.statsSubjectPrefix, "stats-subject-prefix", report.DefaultPrefix, "Subject prefix buffer processes publish their counter reports under.")
	fs.DurationVar(&o.statusInterval, "status-interval", 5*time.Second, "How often buffer processes report, and at most how often a Record's status counters are written.")
	fs.DurationVar(&o.staleAfter, "stale-after", 30*time.Second, "A Record whose pods sent no report for this long is marked stale (Reporting=False). Several status intervals.")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address of the manager's Prometheus metrics endpoint (\"0\" disables it).")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "Elect a leader among manager replicas (Lease recbuf.dev), so that one reconciles at a time.")
	fs.StringVar(&o.leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the manager's own namespace, when run in a cluster).")
	o.zap.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, o.validate()
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
	if o.statsSubjectPrefix == "" {
		errs = append(errs, errors.New("--stats-subject-prefix is required"))
	}
	if o.statusInterval <= 0 {
		errs = append(errs, fmt.Errorf("--status-interval %s: want a positive duration", o.statusInterval))
	}
	if o.staleAfter <= o.statusInterval {
		errs = append(errs, fmt.Errorf("--stale-after %s: want more than --status-interval (%s), or every Record looks stale between two reports", o.staleAfter, o.statusInterval))
	}
	return errors.Join(errs...)
}

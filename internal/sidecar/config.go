package sidecar

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/natsconn"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/sidecar/consumerauth"
	"github.com/recbuf/recbuf/internal/sizing"
	"github.com/recbuf/recbuf/internal/wire"
)

// RecordConfig is one record the process serves.
type RecordConfig struct {
	// Namespace, Name and UID identify the Record (UID may be empty
	// standalone). Name is also the record's name in the consumer API.
	Namespace string
	Name      string
	UID       string
	// Type and Capacity declare the buffer; Capacity is for SpmcRing only.
	Type     buffer.Type
	Capacity int
	// MaxBytes is a SpmcRing's byte budget: at most this many bytes of
	// payloads besides at most Capacity values (0: the capacity alone).
	// It must be at least Config.MaxMessageBytes, so that every message
	// taken in fits.
	MaxBytes int64
	// Subject is the NATS subject to take messages from (wildcards allowed).
	Subject string
	// QueueGroup, when set, shares the subject's messages between the
	// processes of the group.
	QueueGroup string
	// Stream, when set, is the JetStream stream that holds the record
	// durably (created by the manager, its subjects Subject): the buffer
	// is restored from it at start and follows it instead of subscribing,
	// values are numbered as the stream numbers them, and a Mailbox take
	// deletes the value from the stream. Only for a process of one record,
	// without QueueGroup.
	Stream string
}

// NATSConfig is how the process reaches NATS.
type NATSConfig struct {
	// URL is the server URL (or a comma-separated list of them).
	URL string
	// CredentialsDir, when set, is a directory (a mounted Secret) holding
	// any of the files creds, token, username and password, ca.crt,
	// tls.crt and tls.key, read by package natsconn. A half pair of files
	// fails Start with ErrInvalidConfig.
	CredentialsDir string
	// ReconnectWait is the first reconnection delay, doubled per failed
	// attempt up to MaxReconnectWait, with jitter (<= 0: 250ms and 5s).
	ReconnectWait    time.Duration
	MaxReconnectWait time.Duration
}

// Config configures a buffer process.
type Config struct {
	// Pod names this process in reports.
	Pod string
	// Records are the records served; at least one.
	Records []RecordConfig
	// NATS is the NATS connection. With EmbeddedNATS its URL is ignored.
	NATS NATSConfig
	// EmbeddedNATS, when set, is the host:port of an in-process NATS server
	// to start and use (port 0: any free port).
	EmbeddedNATS string
	// EmbeddedMQTT, when set with EmbeddedNATS, is the host:port on which
	// the in-process server also accepts MQTT 3.1.1 clients (port 0: any
	// free port); it turns on JetStream, which NATS's MQTT needs, in a
	// temporary directory removed on exit.
	EmbeddedMQTT string
	// MaxMessageBytes is the largest payload taken in (<= 0:
	// wire.DefaultMaxMessageBytes, 1 MiB).
	MaxMessageBytes int
	// MemoryLimit is the container's memory limit in bytes (0: none
	// known). Start does not use it: SetGoMemoryLimit, which main calls,
	// sets the process-wide Go limit from it.
	MemoryLimit int64
	// HTTPAddr and MetricsAddr are the listen addresses of the consumer API
	// and of /metrics, /healthz, /readyz.
	HTTPAddr    string
	MetricsAddr string
	// Profiling serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/ on the metrics listener. Off by default: a profile
	// shows the process's memory, payloads included, to whoever reaches
	// that port (docs/operations.md#profiles).
	Profiling bool
	// ReportInterval is the time between counter reports (<= 0:
	// report.DefaultInterval); ReportSubjectPrefix their subject prefix
	// (empty: report.DefaultPrefix).
	ReportInterval      time.Duration
	ReportSubjectPrefix string
	// ReportKeyFile, when set, is the file holding the Record's report key
	// (its Secret, mounted by the manager): reports are signed with it, and
	// the manager ignores unsigned ones. It is read at Start, where a
	// missing or short key fails with ErrInvalidConfig, and again before
	// each report, so that a rotated key takes effect without a restart.
	ReportKeyFile string
	// ReportSettingsFile, when set, is a file of report.Settings (JSON) that
	// overrides ReportInterval and ReportSubjectPrefix: read at Start, and
	// re-read every SettingsPoll while the process runs, so that a change
	// is applied without a restart. In a cluster it is the Record's
	// ConfigMap, mounted. A file that is missing or invalid leaves the
	// settings in force as they are (and is logged).
	ReportSettingsFile string
	// SettingsPoll is how often ReportSettingsFile is re-read (<= 0:
	// DefaultSettingsPoll).
	SettingsPoll time.Duration
	// StreamCheck is how often a durable record's stream is looked up
	// again, to notice that it was deleted and created again, which stops
	// the process with ErrStreamReplaced so that it restarts and restores
	// from the new stream (<= 0: DefaultStreamCheck).
	StreamCheck time.Duration
	// ShutdownGrace bounds the graceful shutdown (<= 0: 10s).
	ShutdownGrace time.Duration
	// Heartbeat is the idle time after which a stream gets an SSE comment
	// (<= 0: consumerapi.DefaultHeartbeat).
	Heartbeat time.Duration
	// StreamRetry is the reconnection delay streams suggest to clients
	// (SSE "retry:"; <= 0: consumerapi.DefaultRetry).
	StreamRetry time.Duration
	// MaxStreams caps the consumer API's event streams open at once, over
	// all records (<= 0: consumerapi.DefaultMaxStreams); MaxTakes its take
	// requests in progress (<= 0: consumerapi.DefaultMaxTakes). A request
	// beyond either is refused with 503 and Retry-After.
	MaxStreams int
	MaxTakes   int
	// AllowedOrigins are the origins whose pages may read the records from
	// a browser (CORS; consumerapi.Config.AllowedOrigins): exact origins
	// such as https://dash.example.com, or the one entry "*", which is
	// refused with a ConsumerAuthentication other than None. Empty: none.
	AllowedOrigins []string
	// MaxRequests caps the consumer API's requests in progress of every
	// kind (streams, takes, latest, info, list), over all records (<= 0:
	// MaxStreams + MaxTakes + consumerapi.DefaultMaxQuickRequests);
	// MaxRequestsPerClient those from one
	// client IP address (<= 0: consumerapi.DefaultMaxRequestsPerClient). A
	// request beyond either is refused with 503 and Retry-After.
	MaxRequests          int
	MaxRequestsPerClient int
	// ConsumerAuthentication is how consumers are authenticated:
	// consumerauth.ModeNone (or empty) asks no credential;
	// consumerauth.ModeServiceAccountToken asks each request for a
	// ServiceAccount token with audience recbuf.dev and authorizes it on
	// the Record with the API server (package consumerauth). Every record
	// is then authorized as the Record of its name in its Namespace.
	ConsumerAuthentication string
	// KubeConfig reaches the API server for the reviews of
	// ServiceAccountToken (nil: the pod's in-cluster configuration, its
	// ServiceAccount's token). Unused otherwise.
	KubeConfig *rest.Config
	// Logger receives log lines (nil: slog.Default()).
	Logger *slog.Logger
}

// Defaults of the command line.
const (
	DefaultHTTPAddr      = ":8080"
	DefaultMetricsAddr   = ":9090"
	DefaultNATSURL       = "nats://127.0.0.1:4222"
	DefaultShutdownGrace = 10 * time.Second
	// DefaultSettingsPoll is how often the report settings file is
	// re-read: small beside the kubelet's own delay in updating a mounted
	// ConfigMap (about a minute), and a read of a few bytes.
	DefaultSettingsPoll = 5 * time.Second
	// DefaultStreamCheck is how often a durable record's stream is looked
	// up again: one small JetStream request per interval.
	DefaultStreamCheck = 30 * time.Second
)

// ErrInvalidConfig is wrapped by every configuration error.
var ErrInvalidConfig = errors.New("invalid configuration")

var nameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$`)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// parseType is buffer.ParseType for a type typed on a command line, where
// its case does not matter: "spmcring" is taken for SpmcRing. (The Record
// API, and so buffer.ParseType, spell the types exactly.)
func parseType(s string) (buffer.Type, error) {
	for _, t := range buffer.Types() {
		if strings.EqualFold(s, string(t)) {
			s = string(t)
		}
	}
	t, err := buffer.ParseType(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return t, nil
}

// ParseRecordSpec parses the standalone form NAME=TYPE[:CAPACITY]@SUBJECT,
// e.g. telemetry=SpmcRing:1024@devices.telemetry.
func ParseRecordSpec(spec string) (RecordConfig, error) {
	name, rest, ok := strings.Cut(spec, "=")
	if !ok {
		return RecordConfig{}, invalid("record %q: want NAME=TYPE[:CAPACITY]@SUBJECT", spec)
	}
	typeSpec, subject, ok := strings.Cut(rest, "@")
	if !ok || subject == "" {
		return RecordConfig{}, invalid("record %q: want NAME=TYPE[:CAPACITY]@SUBJECT", spec)
	}
	typeName, capSpec, hasCap := strings.Cut(typeSpec, ":")
	t, err := parseType(typeName)
	if err != nil {
		return RecordConfig{}, fmt.Errorf("record %q: %w", spec, err)
	}
	rc := RecordConfig{Name: name, Type: t, Subject: subject}
	switch {
	case hasCap && t != buffer.TypeSpmcRing:
		return RecordConfig{}, invalid("record %q: a capacity is only for SpmcRing", spec)
	case hasCap:
		if rc.Capacity, err = strconv.Atoi(capSpec); err != nil {
			return RecordConfig{}, invalid("record %q: capacity %q is not a number", spec, capSpec)
		}
	case t == buffer.TypeSpmcRing:
		return RecordConfig{}, invalid("record %q: SpmcRing needs a capacity (SpmcRing:1024)", spec)
	}
	return rc, nil
}

// Complete fills in the defaults of the fields left zero (or, where their
// documentation says so, negative). It never fails: what it cannot make
// right is Validate's to report. Start calls it.
func (c *Config) Complete() {
	if c.ConsumerAuthentication == "" {
		c.ConsumerAuthentication = consumerauth.ModeNone
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultHTTPAddr
	}
	if c.MetricsAddr == "" {
		c.MetricsAddr = DefaultMetricsAddr
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = wire.DefaultMaxMessageBytes
	}
	if c.ReportInterval <= 0 {
		c.ReportInterval = report.DefaultInterval
	}
	if c.ReportSubjectPrefix == "" {
		c.ReportSubjectPrefix = report.DefaultPrefix
	}
	if c.SettingsPoll <= 0 {
		c.SettingsPoll = DefaultSettingsPoll
	}
	if c.StreamCheck <= 0 {
		c.StreamCheck = DefaultStreamCheck
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.NATS.ReconnectWait <= 0 {
		c.NATS.ReconnectWait = natsconn.DefaultReconnectWait
	}
	if c.NATS.MaxReconnectWait < c.NATS.ReconnectWait {
		c.NATS.MaxReconnectWait = max(natsconn.DefaultMaxReconnectWait, c.NATS.ReconnectWait)
	}
	if c.Pod == "" {
		c.Pod, _ = os.Hostname()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate checks the configuration without changing it, and reports every
// problem at once, each naming its flag, so that a command line is fixed in
// one go: the error wraps ErrInvalidConfig and each problem's own error
// (errors.Is finds buffer.ErrUnknownType, say). A field Complete would fill
// in is valid left zero.
func (c Config) Validate() error {
	var errs []error
	problem := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Records) == 0 {
		problem("no record: set --record-name and --buffer-type, or --record")
	}
	maxMessageBytes := c.MaxMessageBytes
	if maxMessageBytes <= 0 {
		maxMessageBytes = wire.DefaultMaxMessageBytes
	}
	seen := map[string]bool{}
	for _, r := range c.Records {
		if !nameRE.MatchString(r.Name) {
			problem("record name %q (--record-name or --record): want letters, digits, '.', '_' or '-'", r.Name)
		}
		if seen[r.Name] {
			problem("record %q is declared twice (--record)", r.Name)
		}
		seen[r.Name] = true
		if _, err := buffer.ParseType(string(r.Type)); err != nil {
			problem("record %q: --buffer-type: %w", r.Name, err)
		}
		if r.Type == buffer.TypeSpmcRing && r.Capacity < 1 {
			problem("record %q: --capacity %d: SpmcRing wants at least 1", r.Name, r.Capacity)
		}
		switch {
		case r.MaxBytes != 0 && r.Type != buffer.TypeSpmcRing:
			problem("record %q: --buffer-max-bytes: a byte budget is only for SpmcRing", r.Name)
		case r.MaxBytes != 0 && r.MaxBytes < int64(maxMessageBytes):
			problem("record %q: --buffer-max-bytes %d is less than --max-message-bytes %d: the largest message would not fit", r.Name, r.MaxBytes, maxMessageBytes)
		}
		if r.Subject == "" {
			problem("record %q: no NATS subject (--nats-subject)", r.Name)
		}
		if strings.ContainsAny(r.Subject, " \t\r\n") {
			problem("record %q: --nats-subject %q contains white space", r.Name, r.Subject)
		}
		if r.Stream != "" {
			if len(c.Records) != 1 {
				// The stream names the consumer API's one instance.
				problem("record %q: --jetstream-stream is for a process of one record, not %d", r.Name, len(c.Records))
			}
			if r.QueueGroup != "" {
				problem("record %q: --jetstream-stream and --nats-queue-group exclude each other (every replica follows the whole stream)", r.Name)
			}
			if strings.ContainsAny(r.Stream, " \t\r\n.*>") {
				problem("record %q: --jetstream-stream %q contains white space, '.', '*' or '>'", r.Name, r.Stream)
			}
		}
	}
	switch c.ConsumerAuthentication {
	case "", consumerauth.ModeNone:
	case consumerauth.ModeServiceAccountToken:
		// Records are authorized as Records of one namespace: the one of
		// --record-namespace, which every record of a command line shares.
		for _, r := range c.Records {
			if r.Namespace != c.Records[0].Namespace {
				problem("--consumer-authentication %s: records %q and %q are in different namespaces", c.ConsumerAuthentication, c.Records[0].Name, r.Name)
				break
			}
		}
	default:
		problem("--consumer-authentication %q is neither %s nor %s", c.ConsumerAuthentication, consumerauth.ModeNone, consumerauth.ModeServiceAccountToken)
	}
	withAuth := c.ConsumerAuthentication != "" && c.ConsumerAuthentication != consumerauth.ModeNone
	if _, err := consumerapi.ParseAllowedOrigins(c.AllowedOrigins, withAuth); err != nil {
		problem("--allowed-origins: %w", err)
	}
	if c.EmbeddedNATS == "" && c.NATS.URL == "" {
		problem("no NATS URL: set --nats-url, or --embedded-nats")
	}
	if c.EmbeddedMQTT != "" && c.EmbeddedNATS == "" {
		problem("--embedded-mqtt needs the embedded NATS server (--embedded-nats)")
	}
	if c.MemoryLimit < 0 {
		problem("--memory-limit %d: want a number of bytes", c.MemoryLimit)
	}
	if c.ReportSubjectPrefix != "" {
		if err := report.ValidPrefix(c.ReportSubjectPrefix); err != nil {
			problem("--report-subject-prefix: %w", err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// ParseFlags reads a Config from the command line (args without the
// program name) and the environment (POD_NAME, MEMORY_LIMIT). Its error is
// flag.ErrHelp after -h. Usage goes to output.
func ParseFlags(args []string, getenv func(string) string, output io.Writer) (Config, error) {
	fs := flag.NewFlagSet("sidecar", flag.ContinueOnError)
	fs.SetOutput(output)
	var (
		cfg       Config
		one       RecordConfig
		typeName  string
		specs     []string
		queue     string
		stream    string
		logLevel  string
		logFormat string
		maxBytes  int64
		memLimit  string
		origins   string
	)
	fs.StringVar(&one.Namespace, "record-namespace", "default", "namespace of the Record (reports and metrics)")
	fs.StringVar(&one.Name, "record-name", "", "name of the Record served (single-record mode)")
	fs.StringVar(&one.UID, "record-uid", "", "UID of the Record, copied into reports")
	fs.StringVar(&cfg.Pod, "pod-name", getenv("POD_NAME"), "pod name in reports (default $POD_NAME, else the host name)")
	fs.StringVar(&typeName, "buffer-type", "", "buffer type: SpmcRing, SingleLatest or Mailbox")
	fs.IntVar(&one.Capacity, "capacity", 0, "SpmcRing capacity")
	fs.StringVar(&cfg.NATS.URL, "nats-url", DefaultNATSURL, "NATS server URL(s), comma-separated")
	fs.StringVar(&one.Subject, "nats-subject", "", "NATS subject (default records.<namespace>.<name>)")
	fs.StringVar(&queue, "nats-queue-group", "", "NATS queue group shared by replicas (empty: every replica gets every message)")
	fs.StringVar(&stream, "jetstream-stream", "", "JetStream stream holding the record durably: restore from it at start and follow it instead of subscribing (single-record mode)")
	fs.StringVar(&cfg.NATS.CredentialsDir, "nats-credentials-dir", "", "directory with any of creds, token, username, password, ca.crt, tls.crt, tls.key")
	fs.IntVar(&cfg.MaxMessageBytes, "max-message-bytes", wire.DefaultMaxMessageBytes, "largest payload taken in; larger ones are dropped")
	fs.Int64Var(&maxBytes, "buffer-max-bytes", 0, "byte budget of each SpmcRing: at most this many bytes of payloads besides the capacity (0: the capacity alone)")
	fs.StringVar(&memLimit, "memory-limit", getenv(sizing.MemoryLimitEnv), "the container's memory limit in bytes, from which the Go runtime's soft limit is set to 90% (default $"+sizing.MemoryLimitEnv+"; empty or 0: none, GOMEMLIMIT or Go's default)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", DefaultHTTPAddr, "listen address of the consumer API")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", DefaultMetricsAddr, "listen address of /metrics, /healthz and /readyz")
	fs.BoolVar(&cfg.Profiling, "profiling", false, "serve Go's runtime profiles (net/http/pprof) under /debug/pprof/ on --metrics-addr; they show the process's memory, payloads included")
	fs.DurationVar(&cfg.ReportInterval, "report-interval", report.DefaultInterval, "time between counter reports on NATS")
	fs.StringVar(&cfg.ReportSubjectPrefix, "report-subject-prefix", report.DefaultPrefix, "subject prefix of counter reports")
	fs.StringVar(&cfg.ReportKeyFile, "report-key-file", "", "file with the Record's report key, which signs the counter reports (unset: unsigned, which the manager ignores)")
	fs.StringVar(&cfg.ReportSettingsFile, "report-settings-file", "", "JSON file of report settings ({\"interval\":\"5s\",\"subjectPrefix\":\"recbuf.stats\"}) that overrides --report-interval and --report-subject-prefix, re-read while running")
	fs.DurationVar(&cfg.SettingsPoll, "settings-poll", DefaultSettingsPoll, "how often --report-settings-file is re-read")
	fs.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", DefaultShutdownGrace, "time allowed for a graceful shutdown")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", consumerapi.DefaultHeartbeat, "idle time after which a stream gets a heartbeat comment")
	fs.IntVar(&cfg.MaxStreams, "max-streams", consumerapi.DefaultMaxStreams, "most consumer event streams open at once, over all records; more get 503")
	fs.IntVar(&cfg.MaxTakes, "max-takes", consumerapi.DefaultMaxTakes, "most take requests in progress at once, over all records; more get 503")
	fs.StringVar(&origins, "allowed-origins", "", "comma-separated origins whose pages may read the records from a browser (CORS), such as https://dash.example.com,http://localhost:8080, or * for every origin (only with --consumer-authentication=None); empty: none")
	fs.IntVar(&cfg.MaxRequests, "max-requests", 0, "most consumer requests of every kind (streams, takes, latest, info, list) in progress at once, over all records; more get 503 (0: --max-streams + --max-takes + "+strconv.Itoa(consumerapi.DefaultMaxQuickRequests)+")")
	fs.IntVar(&cfg.MaxRequestsPerClient, "max-requests-per-client", consumerapi.DefaultMaxRequestsPerClient, "most consumer requests in progress at once from one client IP address; more get 503")
	fs.StringVar(&cfg.ConsumerAuthentication, "consumer-authentication", consumerauth.ModeNone, "how consumers are authenticated: None, or ServiceAccountToken (a ServiceAccount token with the Record's audience, "+consumerauth.Audience("NAMESPACE", "NAME")+", checked with TokenReview and SubjectAccessReview on the Record; needs the pod's ServiceAccount to be bound to system:auth-delegator)")
	fs.StringVar(&cfg.EmbeddedNATS, "embedded-nats", "", "standalone: start an in-process NATS server on this host:port and use it")
	fs.StringVar(&cfg.EmbeddedMQTT, "embedded-mqtt", "", "standalone: with --embedded-nats, also accept MQTT 3.1.1 clients on this host:port (JetStream in a temporary directory)")
	fs.Func("record", "standalone: serve a record NAME=TYPE[:CAPACITY]@SUBJECT (repeatable)", func(s string) error {
		specs = append(specs, s)
		return nil
	})
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&logFormat, "log-format", "json", "log format: json or text")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, invalid("unexpected arguments %q", fs.Args())
	}
	if origins != "" {
		cfg.AllowedOrigins = strings.Split(origins, ",")
	}
	if memLimit != "" {
		// The downward API writes a plain number of bytes (divisor 1).
		n, err := strconv.ParseInt(memLimit, 10, 64)
		if err != nil {
			return Config{}, invalid("memory limit %q (--memory-limit or $%s): want a number of bytes", memLimit, sizing.MemoryLimitEnv)
		}
		cfg.MemoryLimit = n
	}

	switch {
	case len(specs) > 0 && one.Name != "":
		return Config{}, invalid("use either --record or --record-name, not both")
	case len(specs) > 0 && stream != "":
		return Config{}, invalid("--jetstream-stream is for single-record mode (--record-name), not --record")
	case len(specs) > 0:
		for _, s := range specs {
			rc, err := ParseRecordSpec(s)
			if err != nil {
				return Config{}, err
			}
			rc.Namespace, rc.QueueGroup = one.Namespace, queue
			if rc.Type == buffer.TypeSpmcRing {
				rc.MaxBytes = maxBytes
			}
			cfg.Records = append(cfg.Records, rc)
		}
	case one.Name != "":
		t, err := parseType(typeName)
		if err != nil {
			return Config{}, err
		}
		one.Type, one.QueueGroup, one.Stream = t, queue, stream
		if t != buffer.TypeSpmcRing {
			one.Capacity = 0
		} else {
			one.MaxBytes = maxBytes
		}
		if one.Subject == "" {
			one.Subject = wire.DefaultSubject(one.Namespace, one.Name)
		}
		cfg.Records = []RecordConfig{one}
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return Config{}, invalid("log level %q", logLevel)
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch logFormat {
	case "json":
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, hopts))
	case "text":
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, hopts))
	default:
		return Config{}, invalid("log format %q is neither json nor text", logFormat)
	}
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

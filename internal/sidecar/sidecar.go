package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/rest"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/logthrottle"
	"github.com/recbuf/recbuf/internal/natsconn"
	"github.com/recbuf/recbuf/internal/profiling"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/sidecar/consumerauth"
	"github.com/recbuf/recbuf/internal/sidecar/intake"
	"github.com/recbuf/recbuf/internal/sidecar/metrics"
	"github.com/recbuf/recbuf/internal/sidecar/reporter"
	"github.com/recbuf/recbuf/internal/wire"
)

// Sidecar is a running buffer process.
type Sidecar struct {
	cfg     Config
	log     *slog.Logger
	records []*recordRuntime
	api     *consumerapi.Server
	// authz authorizes consumers (nil: no consumer authentication).
	authz *consumerauth.Authorizer
	// rep is set once Start has wired everything; NATS callbacks that run
	// before that find it nil.
	rep atomic.Pointer[reporter.Reporter]
	// reportKey is the last report key read from Config.ReportKeyFile.
	reportKey reportKey

	embedded *embeddedNATS
	natsURL  string
	nc       *nats.Conn
	// intakes routes each subscription's slow-consumer errors to its
	// intake (see subscribe). nats.go reports them on its own goroutine.
	intakesMu sync.Mutex
	intakes   map[*nats.Subscription]*intake.Intake

	httpLn, metricsLn   net.Listener
	httpSrv, metricsSrv *http.Server

	// subscribed is set once every intake has subscribed (nats.go may not
	// have sent the subscriptions yet); fed once they reached a server:
	// the process takes values in. serving is set while the consumer API
	// serves. Together they make readiness (notReady).
	subscribed, fed, serving atomic.Bool

	shuttingDown atomic.Bool
	// stopFollowing ends the lookups of the followers' streams.
	stopFollowing context.CancelFunc
	serveErr      chan error
	bg            sync.WaitGroup
	done          chan struct{}
	err           error
}

// recordRuntime is one record served: its buffer and its intake, from
// which the consumer API, the reporter and the metrics each get their
// view of the record.
type recordRuntime struct {
	cfg    RecordConfig
	buf    buffer.Buffer[wire.Message]
	intake *intake.Intake
	// follower feeds the intake from the record's JetStream stream (nil:
	// from a core NATS subscription).
	follower *follower
}

func (r *recordRuntime) counters() report.Counters {
	b := r.buf.Stats()
	in := r.intake.Stats()
	return report.Counters{
		Produced:        b.Produced,
		Delivered:       b.Delivered,
		Subscribers:     int64(b.Subscribers),
		LagEvents:       b.LagEvents,
		LaggedValues:    b.LaggedValues,
		Skipped:         b.Skipped,
		Overwrites:      b.Overwrites,
		Evicted:         b.Evicted,
		Dropped:         in.Dropped(),
		LastMessageTime: in.LastMessage,
	}
}

// apiRecord is the record as the consumer API serves it.
func (r *recordRuntime) apiRecord() consumerapi.Record {
	return consumerapi.Record{Name: r.cfg.Name, Subject: r.cfg.Subject, Buffer: r.buf, Shared: r.follower != nil}
}

// reportSource is the record as the reporter reports it to the manager.
func (r *recordRuntime) reportSource() reporter.Source {
	return reporter.Source{Namespace: r.cfg.Namespace, Record: r.cfg.Name, RecordUID: r.cfg.UID, Counters: r.counters}
}

// metricsRecord is the record as /metrics exports it; api serves it.
func (r *recordRuntime) metricsRecord(api *consumerapi.Server) metrics.Record {
	name := r.cfg.Name
	return metrics.Record{
		Namespace: r.cfg.Namespace,
		Name:      name,
		Counters:  r.counters,
		Buffer:    r.buf.Stats,
		Intake:    r.intake.Stats,
		Consumers: func() consumerapi.Stats { return api.Stats(name) },
	}
}

// Run runs a buffer process until ctx ends, then shuts it down gracefully.
func Run(ctx context.Context, cfg Config) error {
	s, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	return s.Wait()
}

// Start starts a buffer process and returns once its listeners are bound
// and its NATS connection is being established (it does not wait for NATS:
// a process started while NATS is down connects when NATS comes up). The
// process shuts down gracefully when ctx ends; Wait waits for that.
func Start(ctx context.Context, cfg Config) (_ *Sidecar, err error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sidecar{cfg: cfg, log: cfg.Logger, natsURL: cfg.NATS.URL, intakes: map[*nats.Subscription]*intake.Intake{}, serveErr: make(chan error, 2), done: make(chan struct{})}
	defer func() {
		if err != nil {
			s.abort()
		}
	}()
	if err := s.newRecords(); err != nil {
		return nil, err
	}
	if err := s.reportKey.load(cfg.ReportKeyFile); err != nil {
		return nil, err
	}
	if err := s.startEmbeddedNATS(); err != nil {
		return nil, err
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	if err := s.connectAndSubscribe(); err != nil {
		return nil, err
	}
	settings := s.newReporter()
	s.startServers()
	stopReporter := s.startReporter(settings)
	rs := s.rep.Load().Settings()
	s.log.Info("Buffer process started",
		"http", s.HTTPAddr(), "metrics", s.MetricsAddr(), "nats", natsconn.RedactURL(s.natsURL), "records", len(s.records), "pod", cfg.Pod,
		"reportInterval", time.Duration(rs.Interval).String(), "reportSubjectPrefix", rs.SubjectPrefix)
	go s.shutdownWhenDone(ctx, stopReporter)
	return s, nil
}

// newRecords builds each record's buffer and intake, and the consumer API
// over the buffers, before anything touches the network: a record the
// buffer package refuses fails Start with ErrInvalidConfig and nothing to
// undo.
func (s *Sidecar) newRecords() error {
	apiRecords := make([]consumerapi.Record, 0, len(s.cfg.Records))
	for _, rc := range s.cfg.Records {
		log := s.log.With("record", rc.Name)
		var (
			f    *follower
			opts []buffer.Option[wire.Message]
		)
		if rc.Stream != "" {
			f = &follower{
				name: rc.Stream, rc: rc, log: log, failures: logthrottle.New(10*time.Second, nil),
				setInstance: func(id string) error { return s.api.SetInstance(id) },
				retry:       s.cfg.NATS.ReconnectWait, maxRetry: s.cfg.NATS.MaxReconnectWait,
				checkEvery: s.cfg.StreamCheck, replaced: s.fail,
			}
			opts = append(opts, buffer.WithExternalSeq[wire.Message](), buffer.WithTake(f.take))
		}
		buf, err := newBuffer(rc, opts...)
		if err != nil {
			return fmt.Errorf("%w: record %q: %w", ErrInvalidConfig, rc.Name, err)
		}
		r := &recordRuntime{cfg: rc, buf: buf, follower: f, intake: intake.New(buf, intake.Config{
			Subject:         rc.Subject,
			QueueGroup:      rc.QueueGroup,
			MaxMessageBytes: s.cfg.MaxMessageBytes,
			Logger:          log,
		})}
		if f != nil {
			f.intake = r.intake
		}
		s.records = append(s.records, r)
		apiRecords = append(apiRecords, r.apiRecord())
	}
	authz, err := s.newAuthorizer()
	if err != nil {
		return err
	}
	apiCfg := consumerapi.Config{
		Heartbeat: s.cfg.Heartbeat, Retry: s.cfg.StreamRetry, MaxStreams: s.cfg.MaxStreams, MaxTakes: s.cfg.MaxTakes,
		MaxRequests: s.cfg.MaxRequests, MaxRequestsPerClient: s.cfg.MaxRequestsPerClient, Logger: s.log,
		AllowedOrigins: s.cfg.AllowedOrigins,
	}
	if authz != nil {
		// Not assigned when nil: a nil *Authorizer in the interface would
		// not be a nil Authorizer.
		apiCfg.Authorizer = authz
	}
	api, err := consumerapi.New(apiCfg, apiRecords...)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	s.api = api
	return nil
}

// newAuthorizer returns the authorizer of consumers that
// Config.ConsumerAuthentication asks for, nil for none. It reaches the API
// server with Config.KubeConfig, else the pod's in-cluster configuration,
// whose token client-go re-reads as the kubelet rotates it.
func (s *Sidecar) newAuthorizer() (*consumerauth.Authorizer, error) {
	if s.cfg.ConsumerAuthentication != consumerauth.ModeServiceAccountToken {
		return nil, nil
	}
	kube := s.cfg.KubeConfig
	if kube == nil {
		var err error
		if kube, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("%w: consumer authentication %s needs the API server: %w", ErrInvalidConfig, consumerauth.ModeServiceAccountToken, err)
		}
	}
	reviewer, err := consumerauth.NewReviewer(kube)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	s.authz = consumerauth.New(consumerauth.Config{Namespace: s.cfg.Records[0].Namespace, Reviewer: reviewer})
	return s.authz, nil
}

// startEmbeddedNATS starts the in-process NATS server when one is
// configured, and points the connection at it instead of Config.NATS.URL.
func (s *Sidecar) startEmbeddedNATS() error {
	if s.cfg.EmbeddedNATS == "" {
		return nil
	}
	e, err := startEmbeddedNATS(s.cfg.EmbeddedNATS, s.cfg.MaxMessageBytes, s.cfg.EmbeddedMQTT)
	if err != nil {
		return err
	}
	s.embedded, s.natsURL = e, e.srv.ClientURL()
	if e.mqttAddr != "" {
		s.log.Info("Embedded NATS server started", "url", s.natsURL, "mqtt", e.mqttAddr)
	} else {
		s.log.Info("Embedded NATS server started", "url", s.natsURL)
	}
	return nil
}

// listen binds the consumer API's and the metrics' listeners before
// connecting, so that a port in use fails Start at once and HTTPAddr and
// MetricsAddr are known when Start returns, though serving starts later.
func (s *Sidecar) listen() error {
	var err error
	if s.httpLn, err = net.Listen("tcp", s.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("consumer API listener: %w", err)
	}
	if s.metricsLn, err = net.Listen("tcp", s.cfg.MetricsAddr); err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	return nil
}

// connectAndSubscribe opens the NATS connection and subscribes every
// intake. Neither waits for NATS: while it is down, nats.go sends the
// subscriptions once it connects. When it is up, one round trip makes sure
// the server has the subscriptions, so that what is published once Start
// returns is taken in.
func (s *Sidecar) connectAndSubscribe() error {
	var err error
	if s.nc, err = s.connect(s.natsURL); err != nil {
		return err
	}
	ctx, stop := context.WithCancel(context.Background())
	s.stopFollowing = stop
	for _, r := range s.records {
		if f := r.follower; f != nil {
			s.bg.Go(func() { f.run(ctx, s.nc) })
			continue
		}
		if err := s.subscribe(r.intake); err != nil {
			return err
		}
	}
	s.subscribed.Store(true)
	if s.nc.IsConnected() {
		if err := s.nc.FlushTimeout(5 * time.Second); err != nil {
			s.log.Warn("NATS flush after subscribing failed", "error", err.Error())
		} else {
			s.fed.Store(true)
		}
	}
	return nil
}

// connected is the connection's Connected hook: nats.go has (re)sent the
// subscriptions by the time it runs.
func (s *Sidecar) connected() {
	if s.subscribed.Load() {
		s.fed.Store(true)
	}
	// A report right after each (re)connection tells the manager at once
	// instead of an interval later.
	s.triggerReport()
}

// subscribe starts in on the connection and routes its subscription's
// slow-consumer errors to it. The lock is held across the subscription, so
// that an error nats.go reports at once waits for the route instead of
// finding none.
func (s *Sidecar) subscribe(in *intake.Intake) error {
	s.intakesMu.Lock()
	defer s.intakesMu.Unlock()
	if err := in.Start(s.nc); err != nil {
		return err
	}
	s.intakes[in.Subscription()] = in
	return nil
}

// slowConsumer tells the intake of sub that nats.go discarded messages of
// its subscription. It is the connection's SlowConsumer hook.
func (s *Sidecar) slowConsumer(sub *nats.Subscription) {
	s.intakesMu.Lock()
	in := s.intakes[sub]
	s.intakesMu.Unlock()
	if in == nil {
		s.log.Warn("NATS slow consumer on a subscription of no record", "subject", sub.Subject)
		return
	}
	in.SlowConsumer()
}

// startServers serves the consumer API, and /metrics, /healthz and
// /readyz, on the listeners bound by listen.
func (s *Sidecar) startServers() {
	mrecs := make([]metrics.Record, 0, len(s.records))
	for _, r := range s.records {
		mrecs = append(mrecs, r.metricsRecord(s.api))
	}
	reg := metrics.NewRegistry(metrics.NewCollector(metrics.Conn{
		Connected:      s.nc.IsConnected,
		Reconnects:     func() uint64 { return s.nc.Stats().Reconnects },
		ReportInterval: func() time.Duration { return time.Duration(s.rep.Load().Settings().Interval) },
		ConsumerAuth:   s.authStats(),
	}, mrecs...))

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	if s.cfg.Profiling {
		profiling.Register(mux)
	}
	s.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// No WriteTimeout: streams are long-lived; consumerapi bounds each write,
	// and caps each connection's kernel send buffer. A consumer's request is
	// a path, a few headers and maybe a Last-Event-ID: 16 KiB of header is
	// plenty, and net/http's default of 1 MiB per connection is what a
	// hostile client would hold.
	s.httpSrv = &http.Server{
		Handler:           s.api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ConnContext:       consumerapi.ConnContext,
	}
	s.serving.Store(true)
	s.serve(s.httpSrv, s.httpLn, &s.serving)
	s.serve(s.metricsSrv, s.metricsLn, nil)
}

// authStats is the consumer authorizer's counters for /metrics, nil
// without one.
func (s *Sidecar) authStats() func() consumerauth.Stats {
	if s.authz == nil {
		return nil
	}
	return s.authz.Stats
}

// newReporter builds the reporter with the report settings in force at
// start: the settings file's when it is readable and valid (see
// settings.go), else the command line's, and returns that file (nil:
// none) for startReporter to follow.
func (s *Sidecar) newReporter() *settingsFile {
	sources := make([]reporter.Source, 0, len(s.records))
	for _, r := range s.records {
		sources = append(sources, r.reportSource())
	}
	cfg := reporter.Config{
		Conn: s.nc, Prefix: s.cfg.ReportSubjectPrefix, Pod: s.cfg.Pod, Interval: s.cfg.ReportInterval,
		Sources: sources, Logger: s.log, Key: s.reportKey.current(s.log),
	}
	var file *settingsFile
	if s.cfg.ReportSettingsFile != "" {
		file = &settingsFile{path: s.cfg.ReportSettingsFile, log: s.log}
		if st, ok := file.read(); ok {
			cfg.Interval, cfg.Prefix = time.Duration(st.Interval), st.SubjectPrefix
		}
	}
	s.rep.Store(reporter.New(cfg))
	return file
}

// startReporter starts publishing the records' counters, and publishes a
// first report at once (a connection made before the reporter existed had
// no one to trigger it); with a settings file, it follows that file. It
// has a context of its own, not Start's, since shutdown stops it at a
// given step and then publishes a last report; the returned function
// stops it.
func (s *Sidecar) startReporter(file *settingsFile) context.CancelFunc {
	rep := s.rep.Load()
	ctx, stop := context.WithCancel(context.Background())
	s.bg.Go(func() { rep.Run(ctx) })
	if file != nil {
		s.bg.Go(func() { followSettings(ctx, file, s.cfg.SettingsPoll, rep) })
	}
	rep.Trigger()
	return stop
}

// shutdownWhenDone waits until ctx ends or a server fails, whichever comes
// first, shuts the process down, and then closes done.
func (s *Sidecar) shutdownWhenDone(ctx context.Context, stopReporter context.CancelFunc) {
	defer close(s.done)
	select {
	case <-ctx.Done():
	case s.err = <-s.serveErr:
		s.log.Error("Failed, shutting down", "error", s.err.Error())
	}
	s.shutdown(stopReporter)
}

// fail shuts the process down with err, as a failed server does; a second
// failure while the first is being handled is dropped.
func (s *Sidecar) fail(err error) {
	select {
	case s.serveErr <- err:
	default:
	}
}

// serve serves srv on ln in the background; serving, when set, is cleared
// once it stops serving.
func (s *Sidecar) serve(srv *http.Server, ln net.Listener, serving *atomic.Bool) {
	s.bg.Go(func() {
		err := srv.Serve(ln)
		if serving != nil {
			serving.Store(false)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
	})
}

// connect opens the NATS connection with the connection policy shared
// with the manager (package natsconn). It succeeds while NATS is down (the
// connection keeps retrying forever), failing only on bad options.
func (s *Sidecar) connect(url string) (*nats.Conn, error) {
	creds, err := natsconn.CredentialOptions(s.cfg.NATS.CredentialsDir)
	if errors.Is(err, natsconn.ErrInvalidCredentials) {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err != nil {
		return nil, err
	}
	policy := natsconn.Policy{
		Name:             "recbuf-sidecar/" + s.cfg.Pod,
		ReconnectWait:    s.cfg.NATS.ReconnectWait,
		MaxReconnectWait: s.cfg.NATS.MaxReconnectWait,
		Logger:           s.log,
		Hooks: natsconn.Hooks{
			Connected:    func(*nats.Conn) { s.connected() },
			SlowConsumer: s.slowConsumer,
		},
	}
	nc, err := policy.Connect(url, append(creds,
		// Reports are snapshots: better none than stale ones flushed after a
		// reconnect. Subscriptions are re-sent on reconnect regardless.
		nats.ReconnectBufSize(-1),
	)...)
	if err != nil {
		return nil, fmt.Errorf("nats connect: %w", err)
	}
	return nc, nil
}

func (s *Sidecar) triggerReport() {
	// The reporter exists once Start has wired everything; a connection
	// made before that is reported by Start's own trigger. (Before Run
	// starts, Trigger only marks a report as due.)
	if rep := s.rep.Load(); rep != nil {
		rep.Trigger()
	}
}

func (s *Sidecar) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	if reason := s.notReady(); reason != "" {
		http.Error(w, reason, http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// notReady says why the process is not ready, "" when it is. Readiness is
// for consumers: a process that serves what it holds stays ready while
// NATS is down (that shows in recbuf_nats_connected and in the Record's
// NATSConnected condition), so that an outage of NATS does not take every
// buffer out of its Service. It is not ready before its subscriptions
// first reached NATS (it would serve nothing, and a rolling update would
// stop the old pod before the new one takes values in), before a durable
// record was restored from its JetStream stream (it would serve a part of
// what the stream holds), once its consumer API stopped serving, and while
// it shuts down.
func (s *Sidecar) notReady() string {
	switch {
	case s.shuttingDown.Load():
		return "shutting down"
	case !s.serving.Load():
		return "consumer API not serving"
	case !s.fed.Load():
		return "not subscribed to NATS yet"
	case !s.restored():
		return "not restored from JetStream yet"
	default:
		return ""
	}
}

// restored reports whether every record with a JetStream stream has been
// restored from it.
func (s *Sidecar) restored() bool {
	for _, r := range s.records {
		if r.follower != nil && !r.follower.restored.Load() {
			return false
		}
	}
	return true
}

// Ready reports whether the process is ready for consumers: its consumer
// API serves, its subscriptions reached NATS once, its durable records
// were restored from their streams, and it is not shutting down. Connected tells whether NATS is connected now.
func (s *Sidecar) Ready() bool { return s.notReady() == "" }

// Connected reports whether the NATS connection is up now.
func (s *Sidecar) Connected() bool { return s.nc.IsConnected() }

// HTTPAddr is the bound address of the consumer API (host:port).
func (s *Sidecar) HTTPAddr() string { return s.httpLn.Addr().String() }

// MetricsAddr is the bound address of /metrics, /healthz and /readyz.
func (s *Sidecar) MetricsAddr() string { return s.metricsLn.Addr().String() }

// NATSURL is the URL of the embedded NATS server, "" without one.
func (s *Sidecar) NATSURL() string {
	if s.embedded == nil {
		return ""
	}
	return s.embedded.srv.ClientURL()
}

// MQTTAddr is the host:port of the embedded NATS server's MQTT listener,
// "" without one.
func (s *Sidecar) MQTTAddr() string {
	if s.embedded == nil {
		return ""
	}
	return s.embedded.mqttAddr
}

// RecordURL is the consumer API URL of the named record.
func (s *Sidecar) RecordURL(name string) string {
	return "http://" + s.HTTPAddr() + "/v1/records/" + name
}

// Instance is the instance id the consumer API stamps on its responses.
func (s *Sidecar) Instance() string { return s.api.Instance() }

// Done is closed once the process has shut down.
func (s *Sidecar) Done() <-chan struct{} { return s.done }

// Wait waits until the process has shut down. It returns nil after a
// shutdown asked for by the context, or the error that forced it.
func (s *Sidecar) Wait() error {
	<-s.done
	return s.err
}

// shutdown runs the graceful shutdown described in the package doc.
func (s *Sidecar) shutdown(stopReporter context.CancelFunc) {
	grace := s.cfg.ShutdownGrace
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	s.log.Info("Shutting down", "grace", grace.String())
	s.shuttingDown.Store(true)

	// Intake gets half the grace at most: the rest is for consumers.
	// Disconnected, nothing is on its way: there is nothing to drain.
	drainCtx, cancelDrain := context.WithTimeout(ctx, grace/2)
	connected := s.nc.IsConnected()
	s.stopFollowing()
	for _, r := range s.records {
		if r.follower != nil {
			// The stream keeps what is on its way: nothing to drain.
			r.follower.stop()
			continue
		}
		if !connected {
			r.intake.Stop()
			continue
		}
		if err := r.intake.Drain(drainCtx); err != nil {
			s.log.Warn("Intake not drained", "record", r.cfg.Name, "error", err.Error())
		}
	}
	cancelDrain()

	stopReporter()
	s.rep.Load().Publish()
	if s.nc.IsConnected() {
		_ = s.nc.FlushTimeout(min(time.Second, grace/4))
	}

	for _, r := range s.records {
		r.buf.Close()
	}
	if err := s.httpSrv.Shutdown(ctx); err != nil {
		s.log.Warn("Consumers cut off at the end of the grace period", "error", err.Error())
		_ = s.httpSrv.Close()
	}
	_ = s.metricsSrv.Close()
	s.nc.Close()
	if s.embedded != nil {
		s.embedded.stop()
	}
	s.bg.Wait()
	s.log.Info("Shut down")
}

// abort releases what a failed Start had set up.
func (s *Sidecar) abort() {
	if s.stopFollowing != nil {
		s.stopFollowing()
		for _, r := range s.records {
			if r.follower != nil {
				r.follower.stop()
			}
		}
	}
	if s.nc != nil {
		s.nc.Close()
	}
	for _, ln := range []net.Listener{s.httpLn, s.metricsLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
	if s.embedded != nil {
		s.embedded.stop()
	}
}

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

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/natsconn"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
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
	// rep is set once Start has wired everything; NATS callbacks that run
	// before that find it nil.
	rep atomic.Pointer[reporter.Reporter]

	embedded *server.Server
	nc       *nats.Conn

	httpLn, metricsLn   net.Listener
	httpSrv, metricsSrv *http.Server

	shuttingDown atomic.Bool
	serveErr     chan error
	bg           sync.WaitGroup
	done         chan struct{}
	err          error
}

type recordRuntime struct {
	cfg    RecordConfig
	buf    buffer.Buffer[wire.Message]
	intake *intake.Intake
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
		Dropped:         in.Dropped(),
		LastMessageTime: in.LastMessage,
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
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sidecar{cfg: cfg, log: cfg.Logger, serveErr: make(chan error, 2), done: make(chan struct{})}
	defer func() {
		if err != nil {
			s.abort()
		}
	}()

	apiRecords := make([]consumerapi.Record, 0, len(cfg.Records))
	for _, rc := range cfg.Records {
		buf, err := buffer.New[wire.Message](rc.Type, rc.Capacity)
		if err != nil {
			return nil, fmt.Errorf("%w: record %q: %w", ErrInvalidConfig, rc.Name, err)
		}
		in := intake.New(buf, intake.Config{
			Subject:         rc.Subject,
			QueueGroup:      rc.QueueGroup,
			MaxMessageBytes: cfg.MaxMessageBytes,
			Logger:          s.log.With("record", rc.Name),
		})
		s.records = append(s.records, &recordRuntime{cfg: rc, buf: buf, intake: in})
		apiRecords = append(apiRecords, consumerapi.Record{Name: rc.Name, Subject: rc.Subject, Buffer: buf})
	}
	if s.api, err = consumerapi.New(consumerapi.Config{Heartbeat: cfg.Heartbeat, Retry: cfg.StreamRetry, Logger: s.log}, apiRecords...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}

	natsURL := cfg.NATS.URL
	if cfg.EmbeddedNATS != "" {
		if s.embedded, err = startEmbeddedNATS(cfg.EmbeddedNATS, cfg.MaxMessageBytes); err != nil {
			return nil, err
		}
		natsURL = s.embedded.ClientURL()
		s.log.Info("Embedded NATS server started", "url", natsURL)
	}

	if s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("consumer API listener: %w", err)
	}
	if s.metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}

	if s.nc, err = s.connect(natsURL); err != nil {
		return nil, err
	}
	for _, r := range s.records {
		if err := r.intake.Start(s.nc); err != nil {
			return nil, err
		}
	}
	if s.nc.IsConnected() {
		// One round trip makes sure the server has the subscriptions, so
		// that what is published once Start returns is taken in.
		if err := s.nc.FlushTimeout(5 * time.Second); err != nil {
			s.log.Warn("NATS flush after subscribing failed", "error", err.Error())
		}
	}

	sources := make([]reporter.Source, 0, len(s.records))
	mrecs := make([]metrics.Record, 0, len(s.records))
	for _, r := range s.records {
		sources = append(sources, reporter.Source{
			Namespace: r.cfg.Namespace, Record: r.cfg.Name, RecordUID: r.cfg.UID, Counters: r.counters,
		})
		name := r.cfg.Name
		mrecs = append(mrecs, metrics.Record{
			Namespace: r.cfg.Namespace,
			Name:      name,
			Buffer:    r.buf.Stats,
			Intake:    r.intake.Stats,
			Consumers: func() consumerapi.Stats { return s.api.Stats(name) },
		})
	}
	rep := reporter.New(reporter.Config{
		Conn: s.nc, Prefix: cfg.ReportSubjectPrefix, Pod: cfg.Pod, Interval: cfg.ReportInterval,
		Sources: sources, Logger: s.log,
	})
	reg := metrics.NewRegistry(metrics.NewCollector(metrics.Conn{
		Connected:  s.nc.IsConnected,
		Reconnects: func() uint64 { return s.nc.Stats().Reconnects },
	}, mrecs...))

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	s.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	// No WriteTimeout: streams are long-lived; consumerapi bounds each write.
	s.httpSrv = &http.Server{Handler: s.api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	repCtx, stopReporter := context.WithCancel(context.Background())
	s.serve(s.httpSrv, s.httpLn)
	s.serve(s.metricsSrv, s.metricsLn)
	s.rep.Store(rep)
	s.bg.Go(func() { rep.Run(repCtx) })
	rep.Trigger()

	s.log.Info("Buffer process started",
		"http", s.HTTPAddr(), "metrics", s.MetricsAddr(), "nats", natsconn.RedactURL(natsURL), "records", len(s.records), "pod", cfg.Pod)
	go func() {
		defer close(s.done)
		select {
		case <-ctx.Done():
		case s.err = <-s.serveErr:
			s.log.Error("Server failed, shutting down", "error", s.err.Error())
		}
		s.shutdown(stopReporter)
	}()
	return s, nil
}

func (s *Sidecar) serve(srv *http.Server, ln net.Listener) {
	s.bg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
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
			// A report right after each (re)connection tells the manager
			// at once instead of an interval later.
			Connected: func(*nats.Conn) { s.triggerReport() },
			SlowConsumer: func(sub *nats.Subscription) {
				for _, r := range s.records {
					if r.intake.Subscription() == sub {
						r.intake.SlowConsumer()
					}
				}
			},
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
	// made before that is reported by Start's own trigger.
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

// notReady says why the process is not ready, "" when it is.
func (s *Sidecar) notReady() string {
	switch {
	case s.shuttingDown.Load():
		return "shutting down"
	case !s.nc.IsConnected():
		return "NATS not connected"
	default:
		return ""
	}
}

// Ready reports whether the process is ready: connected to NATS and not
// shutting down.
func (s *Sidecar) Ready() bool { return s.notReady() == "" }

// HTTPAddr is the bound address of the consumer API (host:port).
func (s *Sidecar) HTTPAddr() string { return s.httpLn.Addr().String() }

// MetricsAddr is the bound address of /metrics, /healthz and /readyz.
func (s *Sidecar) MetricsAddr() string { return s.metricsLn.Addr().String() }

// NATSURL is the URL of the embedded NATS server, "" without one.
func (s *Sidecar) NATSURL() string {
	if s.embedded == nil {
		return ""
	}
	return s.embedded.ClientURL()
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
	for _, r := range s.records {
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
		s.embedded.Shutdown()
		s.embedded.WaitForShutdown()
	}
	s.bg.Wait()
	s.log.Info("Shut down")
}

// abort releases what a failed Start had set up.
func (s *Sidecar) abort() {
	if s.nc != nil {
		s.nc.Close()
	}
	for _, ln := range []net.Listener{s.httpLn, s.metricsLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
	if s.embedded != nil {
		s.embedded.Shutdown()
		s.embedded.WaitForShutdown()
	}
}

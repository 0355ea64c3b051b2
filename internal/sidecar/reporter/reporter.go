package reporter

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/recbuf/recbuf/internal/report"
)

// Source is one record whose counters are reported.
type Source struct {
	// Namespace, Record and RecordUID identify the Record.
	Namespace string
	Record    string
	RecordUID string
	// Counters returns the record's counters now.
	Counters func() report.Counters
}

// Config configures a Reporter.
type Config struct {
	// Conn is the NATS connection reports are published on.
	Conn *nats.Conn
	// Prefix is the subject prefix (empty: report.DefaultPrefix).
	Prefix string
	// Pod names the reporting process.
	Pod string
	// Interval is the time between two reports (<= 0: 5s).
	Interval time.Duration
	// Sources are the records to report on.
	Sources []Source
	// Key returns the report key reports are signed with (report.Sign);
	// nil, or a nil key, publishes them unsigned, which the manager ignores.
	// It is called once per report, so that a key rotated in its mounted
	// Secret takes effect without a restart.
	Key func() []byte
	// Logger receives log lines (nil: slog.Default()).
	Logger *slog.Logger
}

// Reporter publishes reports.
type Reporter struct {
	cfg     Config
	log     *slog.Logger
	trigger chan struct{}

	published atomic.Uint64
	failed    atomic.Uint64
}

// New returns a Reporter; call Run to start it.
func New(cfg Config) *Reporter {
	if cfg.Prefix == "" {
		cfg.Prefix = report.DefaultPrefix
	}
	if cfg.Interval <= 0 {
		cfg.Interval = report.DefaultInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Reporter{cfg: cfg, log: cfg.Logger, trigger: make(chan struct{}, 1)}
}

// Trigger asks Run to publish now (e.g. right after connecting) without
// waiting for the next tick. It never blocks.
func (r *Reporter) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Run publishes every interval and on Trigger until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.trigger:
		}
		r.Publish()
	}
}

// Publish publishes one report per source now, if connected. It returns
// how many were published.
func (r *Reporter) Publish() int {
	nc := r.cfg.Conn
	if !nc.IsConnected() {
		return 0
	}
	n := 0
	for _, src := range r.cfg.Sources {
		if err := r.publish(nc, src); err != nil {
			r.failed.Add(1)
			r.log.Warn("Report not published", "record", src.Record, "error", err.Error())
			continue
		}
		r.published.Add(1)
		n++
	}
	return n
}

func (r *Reporter) publish(nc *nats.Conn, src Source) error {
	rep := report.Report{
		Namespace: src.Namespace,
		Record:    src.Record,
		RecordUID: src.RecordUID,
		Pod:       r.cfg.Pod,
		Time:      time.Now().UTC(),
		Counters:  src.Counters(),
	}
	data, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	subj := report.Subject(r.cfg.Prefix, src.Namespace, src.Record, r.cfg.Pod)
	m := nats.NewMsg(subj)
	m.Data = data
	if r.cfg.Key != nil {
		if key := r.cfg.Key(); key != nil {
			m.Header.Set(report.SignatureHeader, report.Sign(key, data))
		}
	}
	if err := nc.PublishMsg(m); err != nil {
		return fmt.Errorf("publish report on %q: %w", subj, err)
	}
	return nil
}

// Published and Failed count reports published and failed to publish.
func (r *Reporter) Published() uint64 { return r.published.Load() }

// Failed counts reports that could not be published.
func (r *Reporter) Failed() uint64 { return r.failed.Load() }

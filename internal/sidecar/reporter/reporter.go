package reporter

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
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
	// Interval is the time between two reports (<= 0:
	// report.DefaultInterval). Apply changes Prefix and Interval later.
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
	// applied wakes Run when Apply changed the interval.
	applied chan struct{}

	// mu guards settings, which Apply changes while Run reads them.
	mu       sync.Mutex
	settings report.Settings

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
	return &Reporter{
		cfg: cfg, log: cfg.Logger, trigger: make(chan struct{}, 1), applied: make(chan struct{}, 1),
		settings: report.Settings{Interval: report.Duration(cfg.Interval), SubjectPrefix: cfg.Prefix},
	}
}

// Settings returns the interval and prefix in force.
func (r *Reporter) Settings() report.Settings {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.settings
}

// Apply puts new settings in force without interrupting anything: the
// next report, published at once, goes under the new prefix and carries
// the new interval, and the following ones come at the new interval. So
// the manager, which judges a pod by the interval its last report
// carries, never waits for a report at an interval the pod no longer
// keeps. settings must be valid (report.Settings.Validate). It never blocks.
func (r *Reporter) Apply(settings report.Settings) {
	r.mu.Lock()
	r.settings = settings
	r.mu.Unlock()
	select {
	case r.applied <- struct{}{}:
	default:
	}
}

// Trigger asks Run to publish now (e.g. right after connecting) without
// waiting for the next tick. It never blocks.
func (r *Reporter) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Run publishes every interval, on Trigger and after Apply until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	interval := time.Duration(r.Settings().Interval)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.trigger:
		case <-r.applied:
			if d := time.Duration(r.Settings().Interval); d != interval {
				interval = d
				t.Reset(d)
			}
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
	settings := r.Settings()
	for _, src := range r.cfg.Sources {
		if err := r.publish(nc, settings, src); err != nil {
			r.failed.Add(1)
			r.log.Warn("Report not published", "record", src.Record, "error", err.Error())
			continue
		}
		r.published.Add(1)
		n++
	}
	return n
}

func (r *Reporter) publish(nc *nats.Conn, settings report.Settings, src Source) error {
	rep := report.Report{
		Namespace: src.Namespace,
		Record:    src.Record,
		RecordUID: src.RecordUID,
		Pod:       r.cfg.Pod,
		Time:      time.Now().UTC(),
		Interval:  settings.Interval,
		Counters:  src.Counters(),
	}
	data, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	subj := report.Subject(settings.SubjectPrefix, src.Namespace, src.Record, r.cfg.Pod)
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

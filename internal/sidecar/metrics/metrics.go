package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/sidecar/consumerauth"
	"github.com/recbuf/recbuf/internal/sidecar/intake"
)

// Record is one record whose counters are exported.
type Record struct {
	Namespace string
	Name      string
	// Counters are the record's counters as it reports them to the
	// manager: the counter metrics are read from them, so that /metrics and
	// the Record's status count the same things the same way.
	Counters func() report.Counters
	// Buffer gives what only the buffer knows: occupancy, capacity, type.
	Buffer func() buffer.Stats
	// Intake gives the intake's detail: drops by reason, gaps, receipts.
	Intake    func() intake.Stats
	Consumers func() consumerapi.Stats
}

// Conn reports the state of the process's NATS connection, of the reports
// it sends over it, and of the process's consumer authorizer. A nil
// field's metric is not exported.
type Conn struct {
	// Connected reports whether the connection is up now.
	Connected func() bool
	// Reconnects returns how many times it reconnected.
	Reconnects func() uint64
	// ReportInterval returns the report interval in force, which the
	// manager may change while the process runs.
	ReportInterval func() time.Duration
	// ConsumerAuth returns the counts of the consumer authorizer's
	// answers (nil: the process authenticates no consumer).
	ConsumerAuth func() consumerauth.Stats
}

var labels = []string{"namespace", "record"}

func desc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc("recbuf_"+name, help, append(append([]string(nil), labels...), extra...), nil)
}

var (
	produced     = desc("buffer_produced_total", "Values pushed into the buffer.")
	delivered    = desc("buffer_delivered_total", "Values handed to consumers, summed over consumers.")
	lagEvents    = desc("buffer_lag_events_total", "Times a ring consumer fell behind and was told how many values it missed.")
	laggedValues = desc("buffer_lagged_values_total", "Values ring consumers missed, summed over consumers (one value missed by two consumers counts twice).")
	skipped      = desc("buffer_skipped_total", "SingleLatest values a consumer never saw because a newer one replaced them, summed over consumers.")
	overwrites   = desc("buffer_overwrites_total", "Mailbox values replaced before anyone took them.")
	evicted      = desc("buffer_evicted_total", "Values the ring dropped to make room, because it was full or over its byte budget (each value once).")
	occupancy    = desc("buffer_occupancy", "Values held now.")
	capacity     = desc("buffer_capacity", "Values the buffer can hold.", "type")
	bytesHeld    = desc("buffer_bytes", "Bytes of payloads the ring holds now (0 without a byte budget).")
	maxBytes     = desc("buffer_max_bytes", "The ring's byte budget (0: none, the capacity bounds it).")
	subscribers  = desc("buffer_subscribers", "Open buffer readers (streams and waiting takes).")

	received       = desc("intake_received_total", "NATS messages taken into the buffer.")
	dropped        = desc("intake_dropped_total", "NATS messages dropped before the buffer, by reason.", "reason")
	slowEvents     = desc("intake_slow_consumer_events_total", "Times NATS reported the subscription as a slow consumer.")
	upstreamGaps   = desc("intake_upstream_gap_values_total", "Values devices numbered (Recbuf-Device-Seq, or an MQTT payload's \"seq\") that never arrived.")
	pendingMsgs    = desc("intake_pending_messages", "Messages received from NATS and waiting to be taken into the buffer.")
	pendingBytes   = desc("intake_pending_bytes", "Payload bytes received from NATS and waiting to be taken into the buffer.")
	pendingMaxMsgs = desc("intake_pending_limit_messages", "Most messages that may wait; beyond, NATS messages are dropped (reason slow_consumer).")
	pendingMaxB    = desc("intake_pending_limit_bytes", "Most payload bytes that may wait; beyond, NATS messages are dropped (reason slow_consumer).")
	lastMessageSec = desc("intake_last_message_timestamp_seconds", "Unix time of the newest message taken in (0: none yet).")

	streams  = desc("consumer_streams", "Open event streams.")
	takes    = desc("consumer_takes_waiting", "Take requests waiting for a value.")
	requests = desc("consumer_requests_total", "Consumer requests served, by kind (stream, take, latest).", "kind")
	refused  = desc("consumer_refused_total", "Consumer requests refused (503) because the process served as many as its cap, by kind (stream, take; request: requests of every kind, client: from one client address; these two are the process's, the same for each of its records).", "kind")

	natsConnected  = prometheus.NewDesc("recbuf_nats_connected", "1 while the NATS connection is up.", nil, nil)
	natsReconnects = prometheus.NewDesc("recbuf_nats_reconnects_total", "Times the NATS connection was re-established.", nil, nil)
	reportInterval = prometheus.NewDesc("recbuf_report_interval_seconds", "Time between the counter reports sent to the manager, as in force now.", nil, nil)
	consumerAuth   = prometheus.NewDesc("recbuf_consumer_auth_total", "Consumer requests authorized, by result: allowed, unauthenticated (401), forbidden (403), error (503: the API server could not be asked).", []string{"result"}, nil)
)

// reported are the metrics of report.Counters, one per field (by its JSON
// name); the test holds every field to having one. The report's dropped is
// the sum of recbuf_intake_dropped_total's reasons, exported from the
// intake's detail.
var reported = []struct {
	field string
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(report.Counters) float64
}{
	{"produced", produced, prometheus.CounterValue, func(c report.Counters) float64 { return float64(c.Produced) }},
	{"delivered", delivered, prometheus.CounterValue, func(c report.Counters) float64 { return float64(c.Delivered) }},
	{"subscribers", subscribers, prometheus.GaugeValue, func(c report.Counters) float64 { return float64(c.Subscribers) }},
	{"lagEvents", lagEvents, prometheus.CounterValue, func(c report.Counters) float64 { return float64(c.LagEvents) }},
	{"laggedValues", laggedValues, prometheus.CounterValue, func(c report.Counters) float64 { return float64(c.LaggedValues) }},
	{"skipped", skipped, prometheus.CounterValue, func(c report.Counters) float64 { return float64(c.Skipped) }},
	{"overwrites", overwrites, prometheus.CounterValue, func(c report.Counters) float64 { return float64(c.Overwrites) }},
	{"evicted", evicted, prometheus.CounterValue, func(c report.Counters) float64 { return float64(c.Evicted) }},
	{"lastMessageTime", lastMessageSec, prometheus.GaugeValue, func(c report.Counters) float64 {
		if c.LastMessageTime.IsZero() {
			return 0
		}
		return float64(c.LastMessageTime.UnixNano()) / 1e9
	}},
}

// ReportedFields names the report.Counters fields (JSON names) that have a
// metric of their own or, for "dropped", one by reason.
func ReportedFields() []string {
	names := []string{"dropped"}
	for _, m := range reported {
		names = append(names, m.field)
	}
	return names
}

// Collector collects the metrics of a set of records.
type Collector struct {
	conn    Conn
	records []Record
}

// NewCollector returns a Collector for conn and records.
func NewCollector(conn Conn, records ...Record) *Collector {
	return &Collector{conn: conn, records: records}
}

// Describe sends the descriptors of all metrics.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		produced, delivered, lagEvents, laggedValues, skipped, overwrites, evicted, occupancy, capacity, bytesHeld, maxBytes, subscribers,
		received, dropped, slowEvents, upstreamGaps, pendingMsgs, pendingBytes, pendingMaxMsgs, pendingMaxB, lastMessageSec, streams, takes, requests, refused,
		natsConnected, natsReconnects, reportInterval, consumerAuth,
	} {
		ch <- d
	}
}

// Collect reads every record's counters once and sends them.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if c.conn.Connected != nil {
		v := 0.0
		if c.conn.Connected() {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(natsConnected, prometheus.GaugeValue, v)
	}
	if c.conn.Reconnects != nil {
		ch <- prometheus.MustNewConstMetric(natsReconnects, prometheus.CounterValue, float64(c.conn.Reconnects()))
	}
	if c.conn.ReportInterval != nil {
		ch <- prometheus.MustNewConstMetric(reportInterval, prometheus.GaugeValue, c.conn.ReportInterval().Seconds())
	}
	if c.conn.ConsumerAuth != nil {
		st := c.conn.ConsumerAuth()
		for result, n := range map[string]uint64{
			"allowed": st.Allowed, "unauthenticated": st.Unauthenticated, "forbidden": st.Forbidden, "error": st.Errors,
		} {
			ch <- prometheus.MustNewConstMetric(consumerAuth, prometheus.CounterValue, float64(n), result)
		}
	}
	for _, r := range c.records {
		lv := []string{r.Namespace, r.Name}
		counter := func(d *prometheus.Desc, v uint64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append(lv, extra...)...)
		}
		gauge := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(lv, extra...)...)
		}
		if r.Counters != nil {
			c := r.Counters()
			for _, m := range reported {
				ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(c), lv...)
			}
		}
		if r.Buffer != nil {
			b := r.Buffer()
			gauge(occupancy, float64(b.Occupancy))
			gauge(capacity, float64(b.Capacity), string(b.Type))
			gauge(bytesHeld, float64(b.Bytes))
			gauge(maxBytes, float64(b.MaxBytes))
		}
		if r.Intake != nil {
			in := r.Intake()
			counter(received, in.Received)
			counter(dropped, in.Oversized, intake.ReasonOversized)
			counter(dropped, in.Malformed, intake.ReasonMalformed)
			counter(dropped, in.SlowConsumer, intake.ReasonSlowConsumer)
			counter(dropped, in.Closed, intake.ReasonClosed)
			counter(slowEvents, in.SlowConsumerEvents)
			counter(upstreamGaps, in.UpstreamGaps)
			gauge(pendingMsgs, float64(in.PendingMessages))
			gauge(pendingBytes, float64(in.PendingBytes))
			gauge(pendingMaxMsgs, float64(in.PendingLimitMessages))
			gauge(pendingMaxB, float64(in.PendingLimitBytes))
		}
		if r.Consumers != nil {
			cs := r.Consumers()
			gauge(streams, float64(cs.Streams))
			gauge(takes, float64(cs.Takes))
			counter(requests, cs.StreamsTotal, "stream")
			counter(requests, cs.TakesTotal, "take")
			counter(requests, cs.LatestTotal, "latest")
			counter(refused, cs.StreamsRefused, "stream")
			counter(refused, cs.TakesRefused, "take")
			counter(refused, cs.RequestsRefused, "request")
			counter(refused, cs.ClientRefused, "client")
		}
	}
}

// NewRegistry returns a registry with c and the Go runtime and process
// collectors.
func NewRegistry(c *Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

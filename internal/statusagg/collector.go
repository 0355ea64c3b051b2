package statusagg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/nats-io/nats.go"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/recbuf/recbuf/internal/logthrottle"
	"github.com/recbuf/recbuf/internal/natsconn"
	"github.com/recbuf/recbuf/internal/report"
)

// Defaults of Options.
const (
	DefaultInterval   = report.DefaultInterval
	DefaultStaleAfter = report.DefaultStaleAfter
	// DefaultMaxClockSkew is report.DefaultMaxClockSkew.
	DefaultMaxClockSkew = report.DefaultMaxClockSkew
	// changesBuffer bounds the Changes channel. When it is full (the
	// controller is not started yet, or is far behind) a change stays
	// pending and is offered again at the next tick: nothing is lost, and
	// the Collector never blocks on its consumer.
	changesBuffer = 1024
)

// Options configure a Collector. The zero value of each field but URL
// selects its default.
type Options struct {
	// URL is the NATS server, or a comma-separated list of servers.
	URL string
	// NATSOptions are extra connection options (credentials, TLS). The
	// Collector adds its own name, retry and reconnect handling after
	// them.
	NATSOptions []nats.Option
	// Prefix is the report subject prefix (report.DefaultPrefix).
	Prefix string
	// Interval is how often changed aggregates are announced on Changes
	// and stale pods are forgotten (DefaultInterval).
	Interval time.Duration
	// StaleAfter is how long a pod's report counts after its receipt
	// (DefaultStaleAfter). It should be several report intervals.
	StaleAfter time.Duration
	// MaxClockSkew is how far a report's own time may be from the
	// manager's clock, either way (DefaultMaxClockSkew). It bounds how long
	// after its capture a report can be replayed to a manager that does not
	// remember the pod (one that has just started): the high-water mark of
	// each pod's report times refuses the other replays.
	MaxClockSkew time.Duration
	// ReconnectWait and MaxReconnectWait bound the jittered exponential
	// backoff between connection attempts (natsconn.DefaultReconnectWait
	// and natsconn.DefaultMaxReconnectWait; see natsconn.Policy).
	ReconnectWait, MaxReconnectWait time.Duration
	// Logger receives the Collector's logs (discarded when unset).
	Logger logr.Logger
}

// Change names what changed. Every change is also a hint: the reader
// recomputes from Aggregate and State, never from the Change itself.
type Change struct {
	// Record is the Record whose aggregate changed.
	Record types.NamespacedName
	// All is set instead of Record when the Collector's own connection came
	// up or went down, which changes what every Record can know.
	All bool
}

// State is the Collector's own connection state.
type State struct {
	// Connected is whether the Collector is connected to NATS now.
	Connected bool
	// Since is when the current connection came up (zero while
	// disconnected). Reports older than that were missed, so a Record
	// without reports is not stale before Since+StaleAfter.
	Since time.Time
	// URL is the configured server URL (for messages).
	URL string
}

// Aggregate sums one Record's fresh pod reports.
type Aggregate struct {
	// Pods is the number of pods with a fresh report.
	Pods int
	// Counters are the sums of the pods' counters (report.Counters.Add).
	Counters report.Counters
	// LastReport is when the newest fresh report was received (zero when
	// Pods is 0).
	LastReport time.Time
	// NextExpiry is when the oldest fresh report stops being fresh, and
	// the aggregate changes without any message (zero when Pods is 0).
	NextExpiry time.Time
	// PodReports are the fresh reports themselves, one per pod, sorted by
	// pod name: the detail behind the sums.
	PodReports []PodReport
}

// PodReport is one pod's latest fresh report.
type PodReport struct {
	Pod      string
	Counters report.Counters
	// Received is when it arrived (the manager's clock): a pod whose last
	// report is older than a report interval or so has gone silent.
	Received time.Time
	// Interval is the pod's report interval as the report says (zero: it
	// does not say), by which its silence is judged.
	Interval time.Duration
}

// Identity is what the Collector needs to know of a live Record to accept
// its reports: the Record controller, which reads the Record and its pods
// and derives its report key from the manager's master key, hands it over
// with Admit. The Collector never calls the API server.
//
// An Identity is a value: Admit copies what it keeps.
type Identity struct {
	// UID is the live Record's; a report must carry it.
	UID types.UID
	// Key is the Record's report key: a report must be signed with it.
	Key []byte
	// Pods are the names of the Record's current pods (any phase): only
	// their reports are kept, so a Record's entries are bounded by its pods.
	Pods []string
}

// admitted is an Identity as the Collector keeps it.
type admitted struct {
	uid  types.UID
	key  []byte
	pods map[string]struct{}
}

// Collector aggregates buffer processes' reports. Create it with New, run
// it with Start (it is a controller-runtime Runnable), tell it the live
// Records with Admit and Forget, and read it with Aggregate, State and
// Changes.
type Collector struct {
	opts    Options
	now     func() time.Time
	changes chan event.TypedGenericEvent[Change]

	mu sync.Mutex
	// known are the admitted Records; records holds reports of known
	// Records only, so its size is bounded by theirs and their pods.
	known   map[types.NamespacedName]admitted
	records map[types.NamespacedName]*recordEntry
	// highWater is the time of the newest report accepted of each current
	// pod of each admitted Record. Unlike records, it is kept while the pod
	// is silent: a report replayed after the pod's entry went stale must
	// still be refused. It is pruned with the pods (Admit) and Records
	// (Forget), so it is bounded by them as records is.
	highWater map[types.NamespacedName]map[string]time.Time
	state     State
	// conn and subscribed make up state.Connected: the Collector listens
	// only once its connection is up and its subscription is in place.
	conn, subscribed bool
	// allPending is set when State changed and the All change has not
	// been delivered yet.
	allPending bool
	// rejected counts refused reports between two log lines, which are
	// written at most once per interval; lastRejection is the newest
	// reason. Never one line per message: whoever may publish could
	// otherwise fill the manager's log.
	rejected      *logthrottle.Throttle
	lastRejection RejectReason
}

type recordEntry struct {
	pods map[string]podEntry
	// dirty is set when the aggregate may have changed since the last
	// Change for this Record was delivered.
	dirty bool
}

type podEntry struct {
	report   report.Report
	received time.Time
}

// New returns a Collector that is not yet connected. Start connects it.
func New(opts Options) *Collector {
	if opts.Prefix == "" {
		opts.Prefix = report.DefaultPrefix
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = DefaultStaleAfter
	}
	if opts.MaxClockSkew <= 0 {
		opts.MaxClockSkew = DefaultMaxClockSkew
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	c := &Collector{
		opts:      opts,
		now:       time.Now,
		changes:   make(chan event.TypedGenericEvent[Change], changesBuffer),
		known:     map[types.NamespacedName]admitted{},
		records:   map[types.NamespacedName]*recordEntry{},
		highWater: map[types.NamespacedName]map[string]time.Time{},
		state:     State{URL: natsconn.RedactURL(opts.URL)},
	}
	c.rejected = logthrottle.New(opts.Interval, func() time.Time { return c.now() })
	return c
}

// Admit makes the Collector accept reports of the Record named key from
// now on, as id describes it: signed with id.Key, carrying id.UID, from one
// of id.Pods. A later Admit replaces the earlier one; the reports kept of
// pods no longer in id.Pods, or of another UID, are dropped (and the
// Record's aggregate announced as changed).
func (c *Collector) Admit(key types.NamespacedName, id Identity) {
	a := admitted{uid: id.UID, key: slices.Clone(id.Key), pods: make(map[string]struct{}, len(id.Pods))}
	for _, p := range id.Pods {
		a.pods[p] = struct{}{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, wasKnown := c.known[key]
	c.known[key] = a
	if hw := c.highWater[key]; hw != nil {
		if !wasKnown || prev.uid != a.uid {
			// Another incarnation: its pods' reports carry another UID.
			delete(c.highWater, key)
		} else {
			for pod := range hw {
				if _, ok := a.pods[pod]; !ok {
					delete(hw, pod)
				}
			}
		}
	}
	e := c.records[key]
	if e == nil {
		return
	}
	for pod, p := range e.pods {
		if _, ok := a.pods[pod]; !ok || types.UID(p.report.RecordUID) != a.uid {
			delete(e.pods, pod)
			e.dirty = true
		}
	}
}

// Forget stops accepting reports of the Record named key and drops those
// kept: the Record is gone.
func (c *Collector) Forget(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.known, key)
	delete(c.records, key)
	delete(c.highWater, key)
}

// StaleAfter is how long a report counts after its receipt.
func (c *Collector) StaleAfter() time.Duration { return c.opts.StaleAfter }

// Changes delivers the Records whose aggregate changed, at most one Change
// per Record per interval, as the generic events controller-runtime's
// source.Channel reads. It is never closed.
func (c *Collector) Changes() <-chan event.TypedGenericEvent[Change] { return c.changes }

// State returns the Collector's connection state.
func (c *Collector) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// NeedLeaderElection reports false: a standby manager collects too, so
// that it has fresh aggregates the moment it becomes the leader.
func (c *Collector) NeedLeaderElection() bool { return false }

// Start connects to NATS, subscribes to the reports and announces changes
// until ctx is done; then it closes the connection and returns nil. It
// returns an error only for a configuration NATS refuses outright (a
// malformed URL); an unreachable server is retried forever.
func (c *Collector) Start(ctx context.Context) error {
	log := c.opts.Logger
	policy := natsconn.Policy{
		Name:             "recbuf-manager",
		ReconnectWait:    c.opts.ReconnectWait,
		MaxReconnectWait: c.opts.MaxReconnectWait,
		Logger:           slog.New(logr.ToSlogHandler(log)),
		Hooks: natsconn.Hooks{
			Connected:    func(*nats.Conn) { c.setConnected(true) },
			Disconnected: func(*nats.Conn) { c.setConnected(false) },
			Closed:       func(*nats.Conn) { c.setConnected(false) },
		},
	}
	nc, err := policy.Connect(c.opts.URL, c.opts.NATSOptions...)
	if err != nil {
		return fmt.Errorf("connecting to NATS at %q: %w", natsconn.RedactURL(c.opts.URL), err)
	}
	defer nc.Close()
	if nc.IsConnected() {
		c.setConnected(true)
	}

	subject := report.Wildcard(c.opts.Prefix)
	sub, err := nc.Subscribe(subject, c.receive)
	if err != nil {
		return fmt.Errorf("subscribing to %q: %w", subject, err)
	}
	// Reports are small and frequent; a manager that cannot keep up should
	// drop old ones rather than be disconnected as a slow consumer.
	if err := sub.SetPendingLimits(64*1024, 64<<20); err != nil {
		return fmt.Errorf("setting pending limits on %q: %w", subject, err)
	}
	if nc.IsConnected() {
		// The server has the subscription once it answers a ping: only then
		// is the Collector listening. (On later connections nats.go sends the
		// subscription before it calls the handlers.)
		if err := nc.FlushTimeout(5 * time.Second); err != nil {
			log.Info("Flushing the report subscription failed", "error", err)
		}
	}
	c.setSubscribed()

	ticker := time.NewTicker(c.opts.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				log.V(1).Info("Unsubscribing from reports failed", "error", err)
			}
			return nil
		case <-ticker.C:
			c.tick()
		}
	}
}

func (c *Collector) setConnected(connected bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = connected
	c.updateStateLocked()
}

func (c *Collector) setSubscribed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subscribed = true
	c.updateStateLocked()
}

func (c *Collector) updateStateLocked() {
	connected := c.conn && c.subscribed
	if c.state.Connected == connected {
		return
	}
	c.state.Connected = connected
	c.state.Since = time.Time{}
	if connected {
		c.state.Since = c.now()
	}
	c.allPending = true
	// Deliver at once rather than at the next tick: a connection change
	// alters every Record's NATSConnected condition.
	c.flushLocked()
}

// receive checks one report message and folds it in. The checks run from
// the cheapest to the dearest, and nothing is stored, or decoded, before
// the message is known to be signed with a live Record's key: a flood of
// foreign reports costs time, never memory.
func (c *Collector) receive(m *nats.Msg) {
	if reason := c.accept(m); reason != "" {
		c.reject(reason)
	}
}

// accept folds m in and returns "", or returns why it was refused.
func (c *Collector) accept(m *nats.Msg) RejectReason {
	now := c.now()
	ns, name, _, ok := report.ParseSubject(c.opts.Prefix, m.Subject)
	if !ok {
		return RejectSubject
	}
	key := types.NamespacedName{Namespace: ns, Name: name}
	c.mu.Lock()
	id, known := c.known[key]
	c.mu.Unlock()
	if !known {
		return RejectUnknownRecord
	}
	sig := m.Header.Get(report.SignatureHeader)
	if sig == "" {
		return RejectUnsigned
	}
	if !report.Verify(id.key, m.Data, sig) {
		return RejectBadSignature
	}
	var r report.Report
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return RejectMalformed
	}
	if r.Namespace != ns || r.Record != name || report.Subject(c.opts.Prefix, r.Namespace, r.Record, r.Pod) != m.Subject {
		return RejectSubject
	}
	if r.RecordUID == "" || types.UID(r.RecordUID) != id.uid {
		return RejectRecordUID
	}
	// The pod's name goes into status.pods: one the API server would refuse
	// there must never reach it, or it would make every status patch fail.
	if len(validation.IsDNS1123Subdomain(r.Pod)) > 0 {
		return RejectInvalidName
	}
	if _, ok := id.pods[r.Pod]; !ok {
		return RejectUnknownPod
	}
	// A signed report cannot be forged, but it can be captured and sent
	// again. Freshness is judged by the receipt time, so a replay would
	// keep a silent pod looking connected. Its own time bounds how late it
	// may come (this check), and must be newer than the pod's last (the
	// high-water mark below); the first holds even when the manager has
	// just started and remembers nothing.
	if skew := now.Sub(r.Time); r.Time.IsZero() || skew > c.opts.MaxClockSkew || skew < -c.opts.MaxClockSkew {
		return RejectClockSkew
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	cur, ok := c.known[key]
	if !ok || cur.uid != id.uid {
		// Forgotten or replaced while the message was checked.
		return RejectUnknownRecord
	}
	if _, ok := cur.pods[r.Pod]; !ok {
		// The pod left while the message was checked: keeping anything of
		// it would outlive Admit's pruning.
		return RejectUnknownPod
	}
	hw := c.highWater[key]
	if last, seen := hw[r.Pod]; seen && !r.Time.After(last) {
		return RejectReplayed
	}
	if hw == nil {
		hw = map[string]time.Time{}
		c.highWater[key] = hw
	}
	hw[r.Pod] = r.Time
	e := c.records[key]
	if e == nil {
		e = &recordEntry{pods: map[string]podEntry{}}
		c.records[key] = e
	}
	prev, seen := e.pods[r.Pod]
	// A pod's reports are identical while its record is idle; only a
	// different one changes the aggregate (receipt time alone does not,
	// until the report expires, which tick notices).
	if !seen || !sameReport(prev.report, r) {
		e.dirty = true
	}
	e.pods[r.Pod] = podEntry{report: r, received: now}
	return ""
}

// reject counts a refused report.
func (c *Collector) reject(reason RejectReason) {
	reportsRejected.WithLabelValues(string(reason)).Inc()
	c.rejected.Add()
	c.mu.Lock()
	c.lastRejection = reason
	c.mu.Unlock()
}

// sameReport compares what the aggregate is made of.
func sameReport(a, b report.Report) bool {
	return a.RecordUID == b.RecordUID && a.Interval == b.Interval && a.Counters.Equal(b.Counters)
}

// tick forgets expired pods and announces the changed Records.
func (c *Collector) tick() {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, e := range c.records {
		for pod, p := range e.pods {
			if now.Sub(p.received) >= c.opts.StaleAfter {
				delete(e.pods, pod)
				e.dirty = true
			}
		}
		if len(e.pods) == 0 && !e.dirty {
			delete(c.records, key)
		}
	}
	if n, ok := c.rejected.Flush(); ok {
		c.opts.Logger.Info("Ignored reports that are not authentic or not valid (see recbuf_reports_rejected_total)", "count", n, "lastReason", c.lastRejection)
	}
	c.flushLocked()
}

// flushLocked offers the pending changes without blocking; what does not
// fit stays pending for the next tick.
func (c *Collector) flushLocked() {
	if c.allPending {
		select {
		case c.changes <- event.TypedGenericEvent[Change]{Object: Change{All: true}}:
			c.allPending = false
		default:
			return
		}
	}
	for key, e := range c.records {
		if !e.dirty {
			continue
		}
		select {
		case c.changes <- event.TypedGenericEvent[Change]{Object: Change{Record: key}}:
			e.dirty = false
			if len(e.pods) == 0 {
				delete(c.records, key)
			}
		default:
			return
		}
	}
}

// Aggregate sums the fresh reports of the Record named key, if it is
// admitted with this uid, from its current pods.
func (c *Collector) Aggregate(key types.NamespacedName, uid types.UID) Aggregate {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	var a Aggregate
	e, id := c.records[key], c.known[key]
	if e == nil || id.uid != uid {
		return a
	}
	for _, p := range e.pods {
		r := p.report
		expiry := p.received.Add(c.opts.StaleAfter)
		if !now.Before(expiry) {
			continue
		}
		a.Pods++
		a.PodReports = append(a.PodReports, PodReport{Pod: r.Pod, Counters: r.Counters, Received: p.received, Interval: time.Duration(r.Interval)})
		a.Counters = a.Counters.Add(r.Counters)
		if p.received.After(a.LastReport) {
			a.LastReport = p.received
		}
		if a.NextExpiry.IsZero() || expiry.Before(a.NextExpiry) {
			a.NextExpiry = expiry
		}
	}
	slices.SortFunc(a.PodReports, func(x, y PodReport) int { return strings.Compare(x.Pod, y.Pod) })
	return a
}

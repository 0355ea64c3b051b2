// Package report defines the counter snapshots that buffer processes
// publish on NATS and the manager aggregates into a Record's status: the
// wire format and the subject scheme, shared by both sides.
//
// A buffer process publishes one Report every interval on
// Subject(prefix, namespace, record, pod). The manager subscribes to
// Wildcard(prefix). Reports are JSON so that operators can read them with
// any NATS client (`nats sub 'recbuf.stats.>'`).
//
// Reports are authenticated, not secret: each is signed with its Record's
// report key (HMAC-SHA256 over the exact message body, hex-encoded in the
// SignatureHeader header). The manager derives each Record's key from its
// own master key (DeriveKey), writes it once into a Secret of the Record's
// and mounts that into the Record's buffer pods only; it verifies with the
// key it derives, never reading the Secret back. The manager accepts a
// report only with a valid signature under the live Record's key, so that
// a NATS client without the key, even on a NATS without any
// authentication, cannot change any Record's status. See docs/security.md.
package report

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// SignatureHeader is the NATS header that carries a report's signature:
// the hex-encoded HMAC-SHA256 of the message body under the Record's
// report key.
const SignatureHeader = "Recbuf-Report-Signature"

// KeyFile is the key of the report key in its Secret, and so the file name
// it is mounted under.
const KeyFile = "key"

// KeySize is the size of the report keys the manager derives; MinKeySize
// is the least a buffer process accepts, and the least master key the
// manager accepts (HMAC-SHA256 keys shorter than its 32-byte output weaken
// it).
const (
	KeySize    = sha256.Size
	MinKeySize = 32
)

// keyDerivationContext starts the message DeriveKey MACs: it ties a derived
// key to this use and this version of the derivation.
const keyDerivationContext = "recbuf.dev/report-key/v1\x00"

// DeriveKey returns the report key of the Record namespace/name with uid
// under the manager's master key:
//
//	HMAC-SHA256(master, "recbuf.dev/report-key/v1\x00" + namespace + "\x00" + name + "\x00" + uid)
//
// Namespace, name and UID never contain NUL, so no two Records share a
// message, and a key tells nothing of another Record's or of the master
// key. A recreated Record (new UID) gets a new key. The key is KeySize raw
// bytes, any of which may be whitespace: it is used as it is.
func DeriveKey(master []byte, namespace, name, uid string) []byte {
	mac := hmac.New(sha256.New, master)
	mac.Write([]byte(keyDerivationContext))
	mac.Write([]byte(namespace))
	mac.Write([]byte{0})
	mac.Write([]byte(name))
	mac.Write([]byte{0})
	mac.Write([]byte(uid))
	return mac.Sum(nil)
}

// MasterKeyFingerprint is a short public name of a master key: the first 8
// hex digits of its SHA-256. The manager puts it into the names of the
// report key Secrets, so that a new master key means new Secrets (and a
// rollout of the buffer pods that mount them). For a random master key of
// MinKeySize bytes or more it tells nothing usable about the key.
func MasterKeyFingerprint(master []byte) string {
	sum := sha256.Sum256(master)
	return hex.EncodeToString(sum[:4])
}

// Sign returns the signature of data under key, as SignatureHeader carries
// it.
func Sign(key, data []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(data)
	return hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether sig is data's signature under key. It compares in
// constant time, so that timing tells a forger nothing.
func Verify(key, data []byte, sig string) bool {
	var got [sha256.Size]byte
	if len(key) == 0 || hex.DecodedLen(len(sig)) != len(got) {
		return false
	}
	if _, err := hex.Decode(got[:], []byte(sig)); err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(data)
	var want [sha256.Size]byte
	return hmac.Equal(got[:], mac.Sum(want[:0]))
}

// DefaultPrefix is the subject prefix reports are published under.
const DefaultPrefix = "recbuf.stats"

// DefaultInterval is how often a buffer process reports, and so how often
// the manager looks at a Record's aggregate; both sides default to it.
const DefaultInterval = 5 * time.Second

// DefaultStaleAfter is how long the manager keeps counting a pod's last
// report: six default intervals, so that a report or two lost on the way
// does not make a Record look stale.
const DefaultStaleAfter = 30 * time.Second

// DefaultMaxClockSkew is how far a report's own time may be from the
// manager's clock, either way, for the manager to accept it: two default
// intervals. A genuine report arrives within milliseconds of being taken,
// so this covers the nodes' clocks disagreeing; a report captured off NATS
// and sent again later than this is refused, whatever the manager still
// remembers of its pod.
const DefaultMaxClockSkew = 2 * DefaultInterval

// Report is one buffer process's snapshot of its counters.
type Report struct {
	// Namespace and Record name the Record this process serves.
	Namespace string `json:"namespace"`
	Record    string `json:"record"`
	// RecordUID ties the report to one incarnation of the Record, so reports
	// from a deleted-and-recreated Record's old pods are not mixed in.
	RecordUID string `json:"recordUID,omitempty"`
	// Pod is the reporting process's pod name (or host name standalone).
	Pod string `json:"pod"`
	// Time is when the snapshot was taken.
	Time time.Time `json:"time"`
	// Interval is the process's report interval when it sent this report:
	// its next report is due within it. The manager judges a pod silent by
	// its own interval, not the manager's, so that a pod still reporting at
	// an older interval after a settings change is not taken for
	// disconnected. Zero (a report from an older process): the manager's.
	Interval Duration `json:"interval,omitzero"`
	// Counters are the buffer's and the intake's counters.
	//
	// A report carries no connection state on purpose: it travels on the
	// very connection it would describe, so "disconnected" could never
	// arrive. The manager tells a disconnected process by its silence.
	Counters Counters `json:"counters"`
}

// Counters is the one type a record's counters have from the buffer
// process to the Record's status and the metrics: the buffer process fills
// it from its buffer and intake, the manager sums it over pods with Add,
// and controllers converts it into the API's RecordCounters. A new counter
// is a field here, a field there, its conversion and its metric.
//
// Every field but Subscribers and LastMessageTime is a monotonic counter
// of one process's life.
type Counters struct {
	// Produced counts values pushed into the buffer.
	Produced uint64 `json:"produced"`
	// Delivered counts values handed to readers, summed over readers.
	Delivered uint64 `json:"delivered"`
	// Subscribers is a gauge: the readers open now.
	Subscribers int64 `json:"subscribers"`
	// LagEvents counts the times a ring reader was told it lagged.
	LagEvents uint64 `json:"lagEvents"`
	// LaggedValues sums the values ring readers missed.
	LaggedValues uint64 `json:"laggedValues"`
	// Skipped sums the SingleLatest values readers never saw.
	Skipped uint64 `json:"skipped"`
	// Overwrites counts Mailbox values replaced before anyone took them.
	Overwrites uint64 `json:"overwrites"`
	// Evicted counts values a ring dropped to make room: because it was
	// full, or over its byte budget. Unlike LaggedValues it counts each
	// value once, whether or not a reader missed it.
	Evicted uint64 `json:"evicted"`
	// Dropped counts input messages refused before the buffer (malformed,
	// oversized, slow consumer).
	Dropped uint64 `json:"dropped"`
	// LastMessageTime is when the newest message was taken in (zero: none).
	LastMessageTime time.Time `json:"lastMessageTime,omitempty"`
}

// Add returns the sum of c and o, as the counters of a Record are the sums
// of its pods': counters saturate instead of wrapping around (a counter
// that reaches the top stays there rather than reading as small), gauges
// add, and LastMessageTime is the newer of the two.
func (c Counters) Add(o Counters) Counters {
	sum := Counters{
		Produced:        addSat(c.Produced, o.Produced),
		Delivered:       addSat(c.Delivered, o.Delivered),
		Subscribers:     addSatSigned(c.Subscribers, o.Subscribers),
		LagEvents:       addSat(c.LagEvents, o.LagEvents),
		LaggedValues:    addSat(c.LaggedValues, o.LaggedValues),
		Skipped:         addSat(c.Skipped, o.Skipped),
		Overwrites:      addSat(c.Overwrites, o.Overwrites),
		Evicted:         addSat(c.Evicted, o.Evicted),
		Dropped:         addSat(c.Dropped, o.Dropped),
		LastMessageTime: c.LastMessageTime,
	}
	if o.LastMessageTime.After(sum.LastMessageTime) {
		sum.LastMessageTime = o.LastMessageTime
	}
	return sum
}

// Equal reports whether c and o hold the same counts and the same instant
// (time.Time's monotonic reading and location aside).
func (c Counters) Equal(o Counters) bool {
	if !c.LastMessageTime.Equal(o.LastMessageTime) {
		return false
	}
	c.LastMessageTime, o.LastMessageTime = time.Time{}, time.Time{}
	return c == o
}

func addSat(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

func addSatSigned(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}

// Subject is the subject a process publishes its reports on:
// <prefix>.<namespace>.<record>.<pod>. Namespace, Record and pod names are
// DNS labels/subdomains, which never contain NATS's separators or
// wildcards except '.', which is replaced by '_'.
func Subject(prefix, namespace, record, pod string) string {
	return prefix + "." + token(namespace) + "." + token(record) + "." + token(pod)
}

// ParseSubject splits a report subject into its namespace, record and pod
// tokens (the pod's '.' replaced by '_', see Subject); ok is false for a
// subject that is not <prefix>.<namespace>.<record>.<pod>. The tokens are
// substrings of subject: nothing is allocated.
func ParseSubject(prefix, subject string) (namespace, record, pod string, ok bool) {
	if len(subject) <= len(prefix) || subject[len(prefix)] != '.' || !strings.HasPrefix(subject, prefix) {
		return "", "", "", false
	}
	rest := subject[len(prefix)+1:]
	namespace, rest, ok1 := strings.Cut(rest, ".")
	record, pod, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || namespace == "" || record == "" || pod == "" || strings.Contains(pod, ".") {
		return "", "", "", false
	}
	return namespace, record, pod, true
}

// Wildcard is the subject the manager subscribes to for all reports.
func Wildcard(prefix string) string { return prefix + ".>" }

func token(s string) string { return strings.ReplaceAll(s, ".", "_") }

// Duration is a time.Duration that reads and writes as a Go duration
// string ("5s", "1m30s") in JSON, as people write it.
type Duration time.Duration

// MarshalText writes d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a duration as time.ParseDuration does.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Settings are how a buffer process reports: the settings the manager
// hands its buffer processes while they run. The manager writes them, as
// JSON, into each Record's ConfigMap (key SettingsKey); the buffer process
// reads the mounted file and re-reads it while running, so that a change
// of the manager's report flags reaches running pods without restarting
// them.
type Settings struct {
	// Interval is the time between two reports.
	Interval Duration `json:"interval"`
	// SubjectPrefix is the subject prefix reports are published under.
	SubjectPrefix string `json:"subjectPrefix"`
}

// SettingsKey is the key of Settings in a Record's ConfigMap, and so the
// name of the file the buffer process reads.
const SettingsKey = "reports.json"

// Validate checks settings as the buffer process applies them.
func (s Settings) Validate() error {
	if s.Interval <= 0 {
		return fmt.Errorf("report interval %s: want a positive duration", time.Duration(s.Interval))
	}
	return ValidPrefix(s.SubjectPrefix)
}

// ValidPrefix checks a report subject prefix: one or more NATS subject
// tokens without wildcards, since the manager subscribes to Wildcard(prefix)
// and each report goes to one subject under it.
func ValidPrefix(prefix string) error {
	if prefix == "" {
		return errors.New("report subject prefix is empty")
	}
	for tok := range strings.SplitSeq(prefix, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return fmt.Errorf("report subject prefix %q: want dot-separated tokens without wildcards or white space", prefix)
		}
	}
	return nil
}

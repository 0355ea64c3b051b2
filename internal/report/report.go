// Package report defines the counter snapshots that buffer processes
// publish on NATS and the manager aggregates into a Record's status: the
// wire format and the subject scheme, shared by both sides.
//
// A buffer process publishes one Report every interval on
// Subject(prefix, namespace, record, pod). The manager subscribes to
// Wildcard(prefix). Reports are JSON so that operators can read them with
// any NATS client (`nats sub 'recbuf.stats.>'`).
package report

import (
	"strings"
	"time"
)

// DefaultPrefix is the subject prefix reports are published under.
const DefaultPrefix = "recbuf.stats"

// DefaultInterval is how often a buffer process reports, and so how often
// the manager looks at a Record's aggregate; both sides default to it.
const DefaultInterval = 5 * time.Second

// DefaultStaleAfter is how long the manager keeps counting a pod's last
// report: six default intervals, so that a report or two lost on the way
// does not make a Record look stale.
const DefaultStaleAfter = 30 * time.Second

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
	// Connected is whether the process's NATS intake is connected now.
	Connected bool `json:"connected"`
	// Counters are the buffer's and the intake's counters.
	Counters Counters `json:"counters"`
}

// Counters mirror buffer.Stats plus the intake's own counters.
type Counters struct {
	Produced     uint64 `json:"produced"`
	Delivered    uint64 `json:"delivered"`
	Subscribers  int64  `json:"subscribers"`
	LagEvents    uint64 `json:"lagEvents"`
	LaggedValues uint64 `json:"laggedValues"`
	Skipped      uint64 `json:"skipped"`
	Overwrites   uint64 `json:"overwrites"`
	// Dropped counts input messages refused as malformed or oversized.
	Dropped uint64 `json:"dropped"`
	// LastMessageTime is when the newest message was taken in (zero: none).
	LastMessageTime time.Time `json:"lastMessageTime,omitempty"`
}

// Subject is the subject a process publishes its reports on:
// <prefix>.<namespace>.<record>.<pod>. Namespace, Record and pod names are
// DNS labels/subdomains, which never contain NATS's separators or
// wildcards except '.', which is replaced by '_'.
func Subject(prefix, namespace, record, pod string) string {
	return prefix + "." + token(namespace) + "." + token(record) + "." + token(pod)
}

// Wildcard is the subject the manager subscribes to for all reports.
func Wildcard(prefix string) string { return prefix + ".>" }

func token(s string) string { return strings.ReplaceAll(s, ".", "_") }

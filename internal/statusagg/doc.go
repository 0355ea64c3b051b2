// Package statusagg is the manager's side of the status transport: a
// Collector subscribes to the counter reports that buffer processes publish
// on NATS (package report), keeps the newest report of each pod, and tells
// the Record controller which Records' aggregates changed, at most once per
// interval per Record, so that status is patched on a timer and never per
// message.
//
// Reports are keyed by Record (namespace and name) and pod, and kept only
// when authentic for a live Record: the Record controller tells the
// Collector each Record's UID, report key and current pods (Admit, Forget),
// and a report is kept only when its subject is the one its body names,
// it is signed with that Record's key (report.Sign), it carries the
// Record's UID, its pod is one of the Record's current pods with a name a
// status can hold, its own time is within Options.MaxClockSkew of the
// manager's clock, and it is newer than that pod's last report (a
// high-water mark kept for as long as the pod is the Record's). Every other
// report is ignored and counted in the manager metric
// recbuf_reports_rejected_total{reason} (a log line at most once per
// interval, never one per message). A report of a Record not admitted is
// dropped before anything is decoded or stored, so the Collector's memory
// is bounded by the admitted Records and their pods, whatever arrives.
// Freshness is judged by the manager's clock at receipt, never by the
// report's own time, so clock skew between nodes within MaxClockSkew does
// not make a Record stale.
//
// This holds on a NATS without any authentication: whoever may publish
// under the prefix, without a Record's key, changes no Record's status.
// The key is derived from the manager's master key and the Record's
// identity, and mounted from a Secret of the Record's namespace; who can
// read that Secret can sign reports for that Record only
// (docs/security.md).
//
// The Collector owns its NATS connection. It retries the first connection
// and reconnects forever, so the manager starts and runs while NATS is
// unreachable; State says whether it is listening, and since when.
//
// Concurrency: all methods of a Collector are safe for concurrent use.
// Start runs until its context is done and must be called at most once.
package statusagg

// Package statusagg is the manager's side of the status transport: a
// Collector subscribes to the counter reports that buffer processes publish
// on NATS (package report), keeps the newest report of each pod, and tells
// the Record controller which Records' aggregates changed, at most once per
// interval per Record, so that status is patched on a timer and never per
// message.
//
// Reports are keyed by Record (namespace and name) and pod; a report whose
// recordUID names another incarnation of the Record (one deleted and
// recreated under the same name) is kept apart and left out of the
// aggregate. A report without a recordUID (a process run by hand) counts
// for whichever Record has its namespace and name. Freshness is judged by
// the manager's clock at receipt, never by the report's own time, so clock
// skew between nodes does not make a Record stale.
//
// Reports are trusted: whoever may publish under the prefix can set any
// Record's counters. Restrict publishing there with NATS permissions to
// the buffer processes' credentials.
//
// The Collector owns its NATS connection. It retries the first connection
// and reconnects forever, so the manager starts and runs while NATS is
// unreachable; State says whether it is listening, and since when.
//
// Concurrency: all methods of a Collector are safe for concurrent use.
// Start runs until its context is done and must be called at most once.
package statusagg

// Package reporter publishes a buffer process's counters on NATS, one
// report.Report per record every interval, for the manager to aggregate
// into the Record's status.
//
// Reports are skipped, not queued, while NATS is disconnected: a report is
// a snapshot, and a stale one flushed after a reconnect would only mislead.
// Run is called once; Trigger, Apply, Settings and Publish are safe for
// concurrent use.
package reporter

// Package metrics exposes a buffer process's counters to Prometheus.
//
// A Collector reads each record's counters (buffer, intake, consumers)
// once per scrape and reports them as one consistent snapshot, so the hot
// paths keep only their own atomics and pay nothing for metrics. Every
// metric carries the labels namespace and record.
//
// NewRegistry returns a registry of its own (not the global one), so that
// several buffer processes can run in one test binary. A Collector is safe
// for concurrent use.
package metrics

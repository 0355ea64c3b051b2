// Package sidecar is the buffer process: it takes one or more records in
// from NATS, holds each in a buffer from package buffer, serves them to
// consumers over HTTP (package consumerapi), exports Prometheus metrics,
// and reports its counters on NATS for the manager (package reporter).
//
// cmd/sidecar is a thin wrapper around ParseFlags and Run. Tests and other
// programs run a buffer process in-process with Start, which returns once
// the listeners are bound (":0" ports are fine; HTTPAddr and MetricsAddr
// tell where) and shuts down gracefully when its context ends:
//
//  1. /readyz turns unready and intake drains (messages already on their
//     way are still taken in);
//  2. a last report is published;
//  3. the buffers close: every open stream receives what its buffer type
//     still lets it read, then an end event; waiting takes get the pending
//     value or 503;
//  4. the HTTP servers and the NATS connection close.
//
// The whole sequence is bounded by Config.ShutdownGrace; streams still open
// then are cut off.
//
// /readyz is for consumers: ready once the subscriptions first reached
// NATS, it stays ready through NATS outages, serving what the buffers hold
// (the NATS state is in recbuf_nats_connected), and turns unready only when
// the consumer API stops serving or the process shuts down.
//
// A record with a JetStream stream (RecordConfig.Stream, --jetstream-stream;
// a persistent Record, whose stream the manager makes) is durable: instead
// of subscribing, the process restores the buffer from the stream at start
// and follows it (jetstream.go). Values carry the stream's sequence
// numbers and the consumer API's instance is the stream's, so consumers
// resume across replicas and restarts; /readyz waits for the restore; a
// Mailbox take deletes the value from the stream before handing it out. A
// stream deleted and created again while followed stops the process with
// ErrStreamReplaced, for a restart to restore from the new stream.
//
// The report settings (interval, subject prefix) may come from a file that
// the process re-reads while it runs (Config.ReportSettingsFile; in a
// cluster the Record's ConfigMap): the manager changes them without
// restarting any buffer pod.
//
// With Config.ConsumerAuthentication ServiceAccountToken, every request of
// the consumer API must carry a ServiceAccount token with audience
// recbuf.dev that the API server authorizes on the Record (package
// consumerauth): 401, 403, or 503 when the API server cannot be asked.
// /metrics, /healthz and /readyz, for Prometheus and the kubelet, ask for
// none.
//
// A Sidecar's methods are safe for concurrent use.
package sidecar

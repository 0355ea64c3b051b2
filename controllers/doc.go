/*
Copyright 2026 The recbuf Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package controllers holds the RecordReconciler, which turns each Record
// into a Deployment and a Service running the buffer process (cmd/sidecar),
// with a ConfigMap of the manager's settings for its pods, and writes the
// Record's status from what the cluster shows and from the counter reports
// the buffer processes publish on NATS (package statusagg). The buffer
// container itself is built by package bufferpod, which the injection
// webhook (package webhook) shares; the reconciler counts the app pods the
// webhook injected into in SidecarsCurrent (record_sidecars.go).
//
// Choices worth knowing:
//   - The pod template holds only what the Record declares and what the
//     pods run (image, NATS URL): a change of it is a reason to restart the
//     pods. The manager's report settings are in the Record's ConfigMap,
//     which the pods mount and re-read (record_settings.go), so that a
//     change of the manager's flags restarts no buffer pod.
//   - Children are written with CreateOrUpdate, setting only the fields
//     recbuf owns (each one whole), so the API server's defaults never look
//     like drift and an unchanged child is never updated, while an edit of
//     an owned field (image, args, probes, security context, replicas,
//     ports, selector) is reverted on the next reconcile. Labels and
//     annotations others add are kept.
//   - The manager caches only Deployments, Services, ConfigMaps,
//     PodDisruptionBudgets, NetworkPolicies, Pods, ServiceAccounts and
//     ClusterRoleBindings labelled
//     app.kubernetes.io/managed-by=recbuf-manager (CacheOptions), and app
//     pods with sidecars in a cache of their own (SidecarPods); a child
//     that lost the label is found with a live read and relabelled. An
//     object that takes a child's name without being the Record's is
//     reported as Stalled/ChildConflict and left alone.
//   - A Record of more than one replica gets a PodDisruptionBudget (one pod
//     at a time), deleted when the Record scales down to one
//     (record_disruption.go). With --network-policies every Record gets a
//     NetworkPolicy: the consumer port open to spec.consumers.from (its own
//     namespace by default), the metrics port to Prometheus's namespaces;
//     without, the manager deletes the ones it made
//     (record_networkpolicy.go). These two are the children it deletes.
//   - Status is patched once per reconcile, at the end, and only when it
//     differs from what was read; counters come from statusagg at most once
//     per report interval, and an idle Record's identical reports write
//     nothing. Reconcile asks to be requeued when a report will expire or
//     a pod would go silent, so staleness shows without any event.
//   - A report cannot say its process is disconnected (it travels on the
//     connection it would describe): NATSConnected is False for running
//     buffer pods that sent no report for one and a half of their report
//     intervals (record_pods.go), and Ready follows.
//   - Reports count only when authentic: each Record has a report key,
//     derived from the manager's master key and the Record's identity,
//     which the manager puts once into a Secret the Record owns (create
//     only: it never reads a Secret) and mounts into its buffer pods,
//     which sign their reports with it; the reconciler hands the key, the
//     UID and the current pods to the collector, which ignores every other
//     report (record_reportkey.go; the RBAC this costs is written there).
//   - A Record with a credentials Secret may only name NATS servers the
//     admin allows, and not plaintext ones other than the manager's own;
//     otherwise it is Stalled and its Deployment is neither created nor
//     updated (record_policy.go; package natspolicy holds the rules).
//   - A Record with spec.persistence has a JetStream stream: one the
//     manager creates and configures (named by bufferpod.StreamName; a finalizer
//     deletes it with the Record unless deletionPolicy is Retain), or one
//     the user manages and the Record adopts (spec.persistence.stream).
//     The manager passes the stream's name to the buffer process, which
//     restores from it and follows it (record_stream.go, StreamReady).
//   - With consumer authentication the Record's buffer pods run as a
//     ServiceAccount of their own, bound to system:auth-delegator so that
//     they can review consumers' tokens (record_consumerauth.go).
//   - Events are emitted for condition transitions (Ready, Stalled,
//     NATSConnected, Reporting, StreamReady) with the condition's reason
//     and message (record_events.go).
//
// Concurrency: a RecordReconciler is driven by controller-runtime, which
// never reconciles the same Record in two goroutines at once; different
// Records may be reconciled concurrently, so the reconciler keeps no
// per-Record state outside the objects it reads, but for two memos, each
// behind a mutex and forgotten with the Record: the report key Secrets it
// created lately (record_reportkey.go; it only saves create calls), and
// when each Record's status.stream was last written (streamSamples in
// record_stream.go; it bounds how often that is rewritten).
package controllers

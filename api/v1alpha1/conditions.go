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

package v1alpha1

// Condition types of a Record. Ready is the summary; Reconciling and
// Stalled are the "abnormal-true" conditions kstatus (kubectl wait, Flux,
// Argo CD, cli-utils) understands; the others explain Ready.
const (
	// ConditionReady is True when the buffer processes are available and
	// connected to NATS: consumers can read the record. When False its
	// reason is the reason of the first condition that failed, in the order
	// Stalled, Reconciling (only with reason ReconcileError), Available,
	// NATSConnected, StreamReady.
	ConditionReady = "Ready"
	// ConditionAvailable mirrors the Deployment's Available condition:
	// True when at least the required number of buffer pods is ready.
	ConditionAvailable = "Available"
	// ConditionReconciling is True while the buffer processes are being
	// created or rolled out to match the spec, and while applying the spec
	// failed for a reason expected to pass (reason ReconcileError).
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when the rollout cannot make progress
	// without a change by someone: the Record's NATS credentials would go
	// to a server the cluster admin does not allow, the name of one of its
	// children is taken by an object it does not manage, it does not fit
	// in its memory limit, the API server refused one of its children, its
	// JetStream stream cannot be had (the StreamReady reasons other than
	// StreamReady and NATSUnavailable), the Deployment exceeded its
	// progress deadline, or pods cannot be created. When several hold, the
	// reason is the first in that order.
	ConditionStalled = "Stalled"
	// ConditionNATSConnected is True when the buffer pods report and no
	// running one has gone silent; False naming the running pods that sent
	// no report for one and a half report intervals. A report travels on
	// the connection the pod's intake uses, so silence is the signal.
	ConditionNATSConnected = "NATSConnected"
	// ConditionReporting is True while the buffer pods' counter reports
	// arrive, so the status counters are current; False (reason Stale) when
	// they stopped for longer than the manager's --report-stale-after.
	ConditionReporting = "Reporting"
	// ConditionStreamReady, on a Record with spec.persistence, is True when
	// its JetStream stream exists and is configured as the Record says
	// (the adopted stream exists); False with a reason saying what stands
	// in the way; Unknown while the manager cannot reach NATS. Absent
	// without spec.persistence.
	ConditionStreamReady = "StreamReady"
	// ConditionSidecarsCurrent is present while app pods run the Record's
	// buffer as an injected sidecar: True when all of them were admitted
	// with the Record's current generation, False (reason
	// OutdatedSidecars, with their count) when some run an older spec,
	// which they only pick up when their pods are recreated. It does not
	// affect Ready.
	ConditionSidecarsCurrent = "SidecarsCurrent"
)

// Reasons of the StreamReady condition. Each reason but StreamReady,
// NATSUnavailable (and ReconcileError) also makes the Record Stalled: it
// needs a change by someone.
const (
	// ReasonStreamReady means the stream exists and is configured as the
	// Record says (for an adopted stream: it exists).
	ReasonStreamReady = "StreamReady"
	// ReasonJetStreamDisabled means the manager's NATS server, or the
	// manager's account on it, has no JetStream.
	ReasonJetStreamDisabled = "JetStreamDisabled"
	// ReasonStreamConflict means a stream of the Record's stream name
	// exists that the manager did not create for this Record (its metadata
	// names another Record or none), or the Record's subject overlaps the
	// subjects of another stream; the manager leaves it alone.
	ReasonStreamConflict = "StreamConflict"
	// ReasonStreamNotFound means the stream named by
	// spec.persistence.stream does not exist (yet): the manager looks
	// again every report interval, and creates or updates no Deployment
	// for the Record until it does (pods already running are left alone).
	ReasonStreamNotFound = "StreamNotFound"
	// ReasonStreamNotAllowed means the adopted stream could hand the
	// buffer pods values the Record's subject does not cover: one of its
	// subjects is not within spec.source.nats.subject (or the default
	// subject), or it mirrors or sources other streams. The Record's
	// subject is what admission (the CRD and the chart's subject policy)
	// vetted, so no Deployment is created or updated for it, and one that
	// runs is scaled to 0.
	ReasonStreamNotAllowed = "StreamNotAllowed"
	// ReasonAccountLimits means JetStream refused the stream for its
	// resource limits: the account's or server's storage, memory or
	// stream count, or a max bytes the account requires.
	ReasonAccountLimits = "AccountLimits"
	// ReasonStreamRefused means JetStream refused the stream's
	// configuration for another reason (such as replicas above 1 on a NATS
	// server that is not clustered); the message carries its answer.
	ReasonStreamRefused = "StreamRefused"
	// ReasonStreamQuotaExceeded means the Record's stream would take its
	// namespace's durable Records beyond their stream quota (the
	// Namespace's recbuf.dev/stream-max-bytes, or the manager's
	// --namespace-stream-max-bytes): the stream is neither created nor
	// updated. Records created earlier keep theirs.
	ReasonStreamQuotaExceeded = "StreamQuotaExceeded"
	// ReasonNATSUnavailable means the manager could not reach JetStream
	// (no connection, or no answer in time); it retries.
	ReasonNATSUnavailable = "NATSUnavailable"
	// (StreamReady is also Unknown with reason ReconcileError when adding
	// or removing the Record's stream finalizer failed; it is retried.)
)

// Reasons of the SidecarsCurrent condition.
const (
	// ReasonSidecarsCurrent means every injected sidecar runs the
	// Record's current spec.
	ReasonSidecarsCurrent = "SidecarsCurrent"
	// ReasonOutdatedSidecars means some injected sidecars were admitted
	// with an older generation of the Record.
	ReasonOutdatedSidecars = "OutdatedSidecars"
)

// Reasons of the Ready condition (when False, Ready reuses the reason of the
// condition that failed).
const (
	// ReasonReady means the buffer pods are available and connected to NATS.
	ReasonReady = "Ready"
)

// Reasons of the Available condition.
const (
	// ReasonMinimumReplicasAvailable means the Deployment reports enough ready
	// pods (the Deployment controller's own reason).
	ReasonMinimumReplicasAvailable = "MinimumReplicasAvailable"
	// ReasonDeploymentUnavailable means the Deployment has fewer ready pods than
	// it requires.
	ReasonDeploymentUnavailable = "DeploymentUnavailable"
	// ReasonDeploymentNotFound means the Record's Deployment does not exist
	// (yet), or the Deployment of its name is not the Record's (then
	// Stalled says ChildConflict). A Deployment that exists but has not
	// reported its availability is DeploymentUnavailable.
	ReasonDeploymentNotFound = "DeploymentNotFound"
	// ReasonScaledToZero means spec.replicas is 0, so nothing serves consumers.
	ReasonScaledToZero = "ScaledToZero"
)

// Reasons of the Reconciling condition.
const (
	// ReasonRollingOut means the Deployment has not yet rolled out the current
	// pod template to all replicas.
	ReasonRollingOut = "RollingOut"
	// ReasonUpToDate means every replica runs the current pod template.
	ReasonUpToDate = "UpToDate"
	// ReasonReconcileError means creating, updating or deleting one of the
	// Record's children (its ConfigMap, Deployment, Service,
	// PodDisruptionBudget, NetworkPolicy, report key Secret and, with
	// consumer authentication, its ServiceAccount and ClusterRoleBinding)
	// failed for a reason that is not a refusal or a conflict (the API
	// server timed out or was unreachable, an optimistic-lock conflict, a
	// webhook did not answer). The manager retries with backoff; the
	// message names the child and carries the error. Ready is then False
	// with this reason unless the Record is also Stalled.
	ReasonReconcileError = "ReconcileError"
)

// Reasons of the Stalled condition.
const (
	// ReasonProgressDeadlineExceeded means the Deployment did not progress
	// within its progress deadline (the Deployment controller's reason).
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	// ReasonReplicaFailure means pods cannot be created, for example because of
	// a quota or a pod security admission refusal.
	ReasonReplicaFailure = "ReplicaFailure"
	// ReasonChildRefused means the API server refused one of the children
	// the manager built for the Record (ConfigMap, Deployment, Service,
	// PodDisruptionBudget, NetworkPolicy, report key Secret, ServiceAccount
	// or ClusterRoleBinding) as invalid, forbidden or malformed, for
	// example resources whose requests exceed their limits; retrying the
	// same object cannot help. The message names the child and carries the
	// API server's answer.
	ReasonChildRefused = "ChildRefused"
	// ReasonChildConflict means an object with the name of one of the
	// Record's children (of any kind the manager creates for it but the
	// report key Secret, which is left alone when it exists) exists that
	// the Record does not manage: another controller owns it, or nobody
	// does. The manager leaves it alone; the message names its kind.
	ReasonChildConflict = "ChildConflict"
	// ReasonInsufficientMemory means the worst case of what the Record
	// declares (its buffer's values, the ring's slots, the intake queue and
	// the process) does not fit in the memory limit its buffer container
	// would run with: spec.resources.limits.memory, or the manager's
	// --buffer-memory-ceiling when the Record sets no resources. The
	// message gives the numbers. The Deployment is left as it was, so that
	// pods already running keep serving instead of being replaced by pods
	// that could be killed for memory.
	ReasonInsufficientMemory = "InsufficientMemory"
	// ReasonProgressing means nothing blocks the rollout.
	ReasonProgressing = "Progressing"
	// ReasonNATSServerNotAllowed means the Record names
	// spec.source.nats.credentialsSecretRef and spec.source.nats.url names a
	// NATS server the cluster admin does not allow credentials to be sent to
	// (the manager's --allowed-nats-servers, by default its own --nats-url).
	// No buffer pod is created for it, and an existing Deployment keeps its
	// last allowed configuration; the message names the server.
	ReasonNATSServerNotAllowed = "NATSServerNotAllowed"
	// ReasonPlaintextNATSCredentials means the Record names
	// spec.source.nats.credentialsSecretRef and would send them over a
	// plaintext nats:// or ws:// connection to a server other than the
	// manager's own, which the cluster admin has not allowed
	// (--allow-plaintext-nats-credentials). Use tls:// or wss://. As for
	// NATSServerNotAllowed, no buffer pod is created or updated.
	ReasonPlaintextNATSCredentials = "PlaintextNATSCredentials"
	// ReasonConsumerAuthenticationNotAllowed means the Record asks for
	// spec.consumers.authentication ServiceAccountToken in a namespace the
	// cluster admin has not opted in (the manager's
	// --consumer-authentication-opt-in, and no Namespace annotation
	// recbuf.dev/consumer-authentication=Allowed): its buffer pods'
	// identity would be bound to system:auth-delegator, which lets whoever
	// runs a pod as it review any token and anyone's access cluster-wide.
	// No binding is made (one made before is deleted) and no buffer pod is
	// created or updated.
	ReasonConsumerAuthenticationNotAllowed = "ConsumerAuthenticationNotAllowed"
)

// Reasons of the NATSConnected condition.
const (
	// ReasonConnected means every reporting pod is connected to NATS.
	ReasonConnected = "Connected"
	// ReasonDisconnected means at least one running buffer pod stopped
	// reporting, so its link to NATS is down (the message says how many, and
	// names them).
	ReasonDisconnected = "Disconnected"
	// ReasonNoReports means no pod reported recently, so the connection state
	// is unknown.
	ReasonNoReports = "NoReports"
	// ReasonManagerDisconnected means the manager itself is not connected to
	// NATS, so it receives no reports and cannot tell.
	ReasonManagerDisconnected = "ManagerDisconnected"
)

// Reasons of the Reporting condition.
const (
	// ReasonReportsFresh means at least one pod reported within --report-stale-after.
	ReasonReportsFresh = "ReportsFresh"
	// ReasonStale means reports were received before but none within
	// --report-stale-after; the counters are the last ones received.
	ReasonStale = "Stale"
	// ReasonAwaitingReports means no report received yet (the pods are
	// starting, or the manager just started).
	ReasonAwaitingReports = "AwaitingReports"
)

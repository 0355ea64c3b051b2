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

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BufferType names the semantics of a Record's buffer. The values are the
// names of the buffer contract (docs/buffer-contract.md).
// +kubebuilder:validation:Enum=SpmcRing;SingleLatest;Mailbox
type BufferType string

const (
	// BufferTypeSpmcRing is a bounded broadcast ring: every consumer reads
	// every value still held; a consumer that falls more than capacity
	// values behind is told exactly how many it missed (lag).
	BufferTypeSpmcRing BufferType = "SpmcRing"
	// BufferTypeSingleLatest keeps only the newest value: a consumer sees
	// the current value on connect and then each newer one it keeps up
	// with; values replaced before a consumer read them are skipped.
	BufferTypeSingleLatest BufferType = "SingleLatest"
	// BufferTypeMailbox is a single slot whose value is taken by exactly
	// one consumer; a new value overwrites one nobody took.
	BufferTypeMailbox BufferType = "Mailbox"
)

const (
	// MaxNameLength is the longest Record name: the Deployment and Service
	// are named NAME-recbuf (ChildNameSuffix), and a Service name is a
	// DNS-1035 label of at most 63 characters.
	MaxNameLength = 63 - len(ChildNameSuffix)
	// ChildNameSuffix is appended to a Record's name to name its
	// Deployment and Service.
	ChildNameSuffix = "-recbuf"
	// DefaultMaxMessageBytes is spec.maxMessageBytes when unset: 1 MiB,
	// NATS's own default max_payload. The field's +kubebuilder:default
	// marker must repeat it as a literal, and the standalone buffer
	// process's default (wire.DefaultMaxMessageBytes) is the same number:
	// this package imports nothing else of the module, so a test here
	// checks the marker and one in controllers checks the buffer's.
	DefaultMaxMessageBytes = 1 << 20
)

// Record declares how one record published on NATS is buffered and served:
// the manager runs buffer processes for it (a Deployment and a Service
// named NAME-recbuf) and reports their health and counters in its status.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=rec,categories=recbuf
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.buffer.type`
// +kubebuilder:printcolumn:name="Capacity",type=integer,JSONPath=`.spec.buffer.capacity`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Produced",type=integer,JSONPath=`.status.produced`,description="Values the Record took in, each once however many of its pods hold a copy"
// +kubebuilder:printcolumn:name="Lag",type=integer,JSONPath=`.status.laggedValues`,description="Values evicted before a consumer read them (SpmcRing), summed over consumers"
// +kubebuilder:printcolumn:name="Overwrites",type=integer,JSONPath=`.status.overwrites`
// +kubebuilder:printcolumn:name="Sidecars",type=integer,JSONPath=`.status.sidecars`,priority=1,description="Running app pods with this Record's buffer injected"
// +kubebuilder:printcolumn:name="Subject",type=string,JSONPath=`.status.subject`,priority=1
// +kubebuilder:printcolumn:name="Endpoint",type=string,JSONPath=`.status.endpoint`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 56",message="metadata.name must be at most 56 characters, so that the Deployment and Service named NAME-recbuf fit in 63"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter), because the Service NAME-recbuf is named after it"
type Record struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec declares the buffer and its source.
	// +required
	Spec RecordSpec `json:"spec"`

	// status is what the manager observes: the buffer processes' health
	// and their counters, sampled every few seconds.
	// +optional
	Status RecordStatus `json:"status,omitempty"`
}

// RecordSpec declares one record's buffer, where its values come from, and
// how its buffer processes run.
//
// +kubebuilder:validation:XValidation:rule="self.buffer.type != 'Mailbox' || !has(self.replicas) || self.replicas <= 1 || has(self.persistence)",message="spec.replicas must be 0 or 1 when spec.buffer.type is Mailbox without spec.persistence: each replica would hold its own mailbox, so a value could be taken twice or never (with spec.persistence the replicas share the mailbox in JetStream)"
// +kubebuilder:validation:XValidation:rule="!has(self.persistence) || !has(self.source) || (!has(self.source.nats.url) && !has(self.source.nats.credentialsSecretRef))",message="spec.persistence forbids spec.source.nats.url and spec.source.nats.credentialsSecretRef: the manager keeps the stream on its own NATS server, with its own credentials"
// +kubebuilder:validation:XValidation:rule="!has(self.buffer.maxBytes) || !quantity(string(self.buffer.maxBytes)).isInteger() || quantity(string(self.buffer.maxBytes)).asInteger() >= (has(self.maxMessageBytes) ? self.maxMessageBytes : 1048576)",message="spec.buffer.maxBytes must be at least spec.maxMessageBytes (1Mi when unset): the largest message taken in must fit in the ring"
// +kubebuilder:validation:XValidation:rule="!has(self.buffer.maxBytes) || !has(self.resources) || !has(self.resources.limits) || !('memory' in self.resources.limits) || quantity(string(self.buffer.maxBytes)).compareTo(quantity(string(self.resources.limits['memory']))) < 0",message="spec.buffer.maxBytes must be less than spec.resources.limits.memory: the ring's values share the buffer container's memory with the process itself"
type RecordSpec struct {
	// buffer is the buffer's semantics and size.
	// +required
	Buffer BufferSpec `json:"buffer"`

	// source is where values come from. When unset, the record is read
	// from the manager's default NATS server on the subject
	// records.<namespace>.<name>.
	// +optional
	Source *SourceSpec `json:"source,omitempty"`

	// replicas is the number of buffer processes. Each replica is its own
	// buffer with its own sequence numbers: without a queue group every
	// replica holds every value (availability; the Service pins a consumer
	// to one replica by client IP so that resuming by sequence works); with
	// spec.source.nats.queueGroup the replicas share the values between
	// them, and a consumer sees only the values of the replica it reached.
	// A Mailbox allows at most one replica, unless spec.persistence keeps
	// it in JetStream, where only one replica can take a value. 0 stops
	// the buffer processes.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Replicas *int32 `json:"replicas,omitempty"`

	// maxMessageBytes is the largest message the buffer takes in; a larger
	// one is counted as dropped. It bounds memory together with the
	// capacity and spec.buffer.maxBytes: a ring holds at most the lesser of
	// maxBytes and capacity × maxMessageBytes bytes of values. NATS
	// servers refuse messages above their max_payload (1 MiB by default)
	// before they reach us.
	// +optional
	// +kubebuilder:default=1048576
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=8388608
	MaxMessageBytes *int32 `json:"maxMessageBytes,omitempty"`

	// resources are the buffer container's compute resources. When unset,
	// the manager derives them from what the Record can hold: a memory
	// limit of the worst case (the buffer's values, its slots, the intake
	// queue and the process) with a quarter of headroom, at most the
	// manager's --buffer-memory-ceiling; a memory request of the same
	// without the intake queue; and a small CPU request (see
	// docs/operations.md#memory). When set, they replace the defaults as a
	// whole (requests and limits together); a Record whose worst case does
	// not fit in the memory limit it sets is Stalled (reason
	// InsufficientMemory), with the numbers in the message.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// scheduling constrains which nodes the buffer pods run on.
	// +optional
	Scheduling *SchedulingSpec `json:"scheduling,omitempty"`

	// consumers says who may reach and use the record's consumer API. When
	// unset, every pod of the Record's namespace may reach it (where the
	// manager's NetworkPolicies are enabled) and no credential is asked.
	// +optional
	Consumers *ConsumersSpec `json:"consumers,omitempty"`

	// persistence keeps the record's values in a NATS JetStream stream on
	// the manager's NATS server instead of only in the buffer processes'
	// memory: the buffer processes restore from the stream when they start
	// and follow it, so values survive a restart of the buffer pods, and
	// replicas share one sequence (docs/persistence.md). When unset, the
	// values live in memory only.
	// +optional
	Persistence *PersistenceSpec `json:"persistence,omitempty"`
}

// StreamStorage is where JetStream keeps a stream's messages.
// +kubebuilder:validation:Enum=File;Memory
type StreamStorage string

const (
	// StreamStorageFile keeps the messages on the NATS servers' disks.
	StreamStorageFile StreamStorage = "File"
	// StreamStorageMemory keeps them in the NATS servers' memory: lost when
	// every server holding a replica restarts.
	StreamStorageMemory StreamStorage = "Memory"
)

// DeletionPolicy says what becomes of a Record's stream when the Record is
// deleted or its spec.persistence removed.
// +kubebuilder:validation:Enum=Delete;Retain
type DeletionPolicy string

const (
	// DeletionPolicyDelete deletes the stream with the Record (a finalizer
	// holds the Record until the stream is gone).
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyRetain leaves the stream and its values: a Record of
	// the same namespace and name created later takes it back.
	DeletionPolicyRetain DeletionPolicy = "Retain"
)

// Defaults of spec.persistence, applied by the manager (not by the API
// server, so that an adopted stream, which forbids the fields, can be told
// from one that sets them).
const (
	// DefaultStreamReplicas is spec.persistence.replicas when unset.
	DefaultStreamReplicas = 1
	// DefaultStreamStorage is spec.persistence.storage when unset.
	DefaultStreamStorage = StreamStorageFile
	// DefaultDeletionPolicy is spec.persistence.deletionPolicy when unset.
	DefaultDeletionPolicy = DeletionPolicyDelete
)

// PersistenceSpec keeps a Record's values in NATS JetStream: in a stream
// the manager creates, configures from the buffer (its type, capacity and
// byte budget) and deletes, or in one the user manages (stream).
//
// +kubebuilder:validation:XValidation:rule="!has(self.stream) || (!has(self.replicas) && !has(self.storage) && !has(self.maxAge) && !has(self.deletionPolicy))",message="spec.persistence.stream adopts a stream the user manages: spec.persistence.replicas, storage, maxAge and deletionPolicy are forbidden with it (the manager neither configures nor deletes that stream)"
// +kubebuilder:validation:XValidation:rule="(has(self.storage) ? self.storage : 'File') == (has(oldSelf.storage) ? oldSelf.storage : 'File')",message="spec.persistence.storage is immutable: JetStream cannot move a stream between File and Memory"
type PersistenceSpec struct {
	// replicas is the number of NATS servers holding a copy of the stream:
	// 1, 3 or 5 (1 when unset). More than 1 needs a clustered NATS.
	// +optional
	// +kubebuilder:validation:Enum=1;3;5
	Replicas *int32 `json:"replicas,omitempty"`

	// storage is where JetStream keeps the values: File (when unset) or
	// Memory. Immutable.
	// +optional
	Storage StreamStorage `json:"storage,omitempty"`

	// maxAge drops values older than this from the stream, such as 24h.
	// When unset, values are dropped only to respect the buffer's limits.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="spec.persistence.maxAge must be at least 1s"
	MaxAge *metav1.Duration `json:"maxAge,omitempty"`

	// stream names an existing JetStream stream, created and managed by
	// the user, to read the record from: the manager neither creates,
	// configures nor deletes it. When unset, the manager owns a stream
	// named recbuf_<namespace>_<name>.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^[^.*>/\\s]+$')",message="spec.persistence.stream must be a JetStream stream name: no whitespace, '.', '*', '>' or '/'"
	Stream string `json:"stream,omitempty"`

	// deletionPolicy is what becomes of the stream when the Record is
	// deleted or its spec.persistence removed: Delete (when unset) or
	// Retain.
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`
}

// ConsumerAuthentication is how the buffer processes authenticate the
// clients of the consumer API.
// +kubebuilder:validation:Enum=None;ServiceAccountToken
type ConsumerAuthentication string

const (
	// ConsumerAuthenticationNone asks no credential: whoever reaches the
	// port may read and take.
	ConsumerAuthenticationNone ConsumerAuthentication = "None"
	// ConsumerAuthenticationServiceAccountToken asks every request for a
	// Kubernetes ServiceAccount token whose audience is the Record's own,
	// recbuf.dev/NAMESPACE/NAME (Authorization: Bearer): a token meant for
	// the API server, another service or another Record is refused, and so
	// is the audience recbuf.dev that every Record shared before. pkg/client's
	// Audience computes it: this package imports only Kubernetes types.
	// It checks the token with a TokenReview, and authorizes
	// it with a SubjectAccessReview on the Record: verb get on the
	// records/consume subresource to stream and read the latest value,
	// verb create on records/take to take, and to stream a Mailbox (whose
	// stream takes each value it sends).
	ConsumerAuthenticationServiceAccountToken ConsumerAuthentication = "ServiceAccountToken"
)

// ConsumersSpec says who may reach and use a Record's consumer API.
//
// +kubebuilder:validation:XValidation:rule="!has(self.allowedOrigins) || !('*' in self.allowedOrigins) || size(self.allowedOrigins) == 1",message="spec.consumers.allowedOrigins: '*' must be the only entry"
// +kubebuilder:validation:XValidation:rule="!has(self.allowedOrigins) || !('*' in self.allowedOrigins) || !has(self.authentication) || self.authentication == 'None'",message="spec.consumers.allowedOrigins: '*' is allowed only when spec.consumers.authentication is None: with a token, list the origins of the pages that may use it"
type ConsumersSpec struct {
	// from lists the pods allowed to reach the consumer port, as a
	// NetworkPolicy's ingress peers: a pod matches a peer when it matches
	// both of the peer's selectors. Enforced when the manager's
	// NetworkPolicies are enabled (chart networkPolicy.enabled) and the
	// cluster's network plugin enforces NetworkPolicy. When empty, the
	// pods of the Record's own namespace.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	From []ConsumerPeer `json:"from,omitempty"`

	// authentication is how the buffer processes authenticate consumers:
	// None (the default) or ServiceAccountToken (a ServiceAccount token
	// whose audience is this Record's own, recbuf.dev/NAMESPACE/NAME).
	// +optional
	// +kubebuilder:default=None
	Authentication ConsumerAuthentication `json:"authentication,omitempty"`

	// maxStreams is the most event streams each buffer process serves at
	// once; one more gets 503 with Retry-After. Unset: the buffer
	// process's default (256). Each open stream costs memory: raise
	// spec.resources with it (docs/operations.md#memory).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65536
	MaxStreams *int32 `json:"maxStreams,omitempty"`

	// maxTakes is the most take requests each buffer process holds in
	// progress at once (a take waits for a value up to its timeout); one
	// more gets 503 with Retry-After. Unset: the buffer process's default
	// (64).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65536
	MaxTakes *int32 `json:"maxTakes,omitempty"`

	// allowedOrigins lists the origins whose web pages may read the
	// Record from a browser (CORS), each exactly as a browser sends it in
	// Origin: scheme://host[:port], http or https, a lowercase host, no
	// path, no trailing slash, no wildcard, without the scheme's default
	// port (https://dash.example.com, http://localhost:8080). The single
	// entry '*' allows every origin, only when authentication is None.
	// When empty, no CORS header is sent: a browser lets only pages served
	// from the consumer API's own origin read it.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	AllowedOrigins []Origin `json:"allowedOrigins,omitempty"`
}

// Origin is a web origin as a browser sends it in the Origin header,
// scheme://host[:port], or '*' for every origin. The buffer process checks
// it again with the same rules (consumerapi.ParseAllowedOrigins).
//
// +kubebuilder:validation:MaxLength=280
// +kubebuilder:validation:XValidation:rule="self == '*' || self.matches(r'^https?://([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*|\\[[0-9a-f:.]+\\])(:[0-9]{1,5})?$')",message="spec.consumers.allowedOrigins[] must be '*' or an origin scheme://host[:port]: http or https, a lowercase host, no path, no trailing slash, no wildcard in the host"
// +kubebuilder:validation:XValidation:rule="!self.matches(r'^https?://[^/]*:[0-9]+$') || self.matches(r':([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$')",message="spec.consumers.allowedOrigins[] must have a port between 1 and 65535, without leading zeros"
// +kubebuilder:validation:XValidation:rule="!(self.startsWith('https://') && self.endsWith(':443')) && !(self.startsWith('http://') && self.endsWith(':80'))",message="spec.consumers.allowedOrigins[] must not name its scheme's default port (443 for https, 80 for http): a browser leaves it out of Origin"
type Origin string

// ConsumerPeer selects pods allowed to reach a Record's consumer port.
//
// +kubebuilder:validation:XValidation:rule="has(self.podSelector) || has(self.namespaceSelector)",message="spec.consumers.from[] must set podSelector, namespaceSelector or both"
type ConsumerPeer struct {
	// podSelector selects pods by label; with namespaceSelector unset,
	// pods of the Record's namespace only.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`

	// namespaceSelector selects namespaces by label (the label
	// kubernetes.io/metadata.name names one); with podSelector unset, all
	// pods of those namespaces.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// ConsumerAuthenticationMode is spec.consumers.authentication, None when
// unset.
func (r *Record) ConsumerAuthenticationMode() ConsumerAuthentication {
	if c := r.Spec.Consumers; c != nil && c.Authentication != "" {
		return c.Authentication
	}
	return ConsumerAuthenticationNone
}

// BufferSpec is a buffer's semantics and size.
//
// +kubebuilder:validation:XValidation:rule="self.type != 'SpmcRing' || has(self.capacity)",message="spec.buffer.capacity is required when spec.buffer.type is SpmcRing"
// +kubebuilder:validation:XValidation:rule="self.type == 'SpmcRing' || !has(self.capacity)",message="spec.buffer.capacity is forbidden unless spec.buffer.type is SpmcRing: SingleLatest and Mailbox hold one value"
// +kubebuilder:validation:XValidation:rule="self.type == 'SpmcRing' || !has(self.maxBytes)",message="spec.buffer.maxBytes is forbidden unless spec.buffer.type is SpmcRing: SingleLatest and Mailbox hold one value, bounded by spec.maxMessageBytes"
type BufferSpec struct {
	// type is the buffer's semantics: SpmcRing, SingleLatest or Mailbox.
	// +required
	Type BufferType `json:"type"`

	// capacity is the number of values a SpmcRing holds, 1 to 1000000.
	// Required for SpmcRing; forbidden for the single-slot types.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	Capacity *int32 `json:"capacity,omitempty"`

	// maxBytes is the most bytes of message payloads a SpmcRing holds,
	// besides at most capacity values: a new value that would exceed
	// either evicts the oldest ones, and a consumer that had not read them
	// is told exactly how many it missed (lag), as for the capacity. A
	// quantity such as 64Mi, from spec.maxMessageBytes (so that every
	// message taken in fits) to 1Ti. When unset, the ring gets what the
	// buffer container's memory limit leaves after the process itself, or
	// no byte bound when capacity × maxMessageBytes fits in that limit
	// anyway (docs/operations.md#memory). Forbidden for the single-slot
	// types.
	// +optional
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity('1')) >= 0 && quantity(string(self)).compareTo(quantity('1Ti')) <= 0",message="spec.buffer.maxBytes must be between 1 and 1Ti bytes"
	MaxBytes *resource.Quantity `json:"maxBytes,omitempty"`
}

// SourceSpec is where a record's values come from.
type SourceSpec struct {
	// nats reads the record from a NATS subject.
	// +required
	NATS NATSSource `json:"nats"`
}

// NATSSource reads a record from a NATS subject.
type NATSSource struct {
	// subject is the NATS subject the buffer subscribes to. When unset it
	// is records.<namespace>.<name>. Wildcards are allowed as whole tokens
	// ('*' for one token, '>' for the rest, last only), so one buffer can
	// gather a family of subjects, such as devices.*.telemetry; every
	// value then lands in the same buffer, whatever subject it came on.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^(([^.*>\\s]+|[*])[.])*([^.*>\\s]+|[*]|>)$')",message="spec.source.nats.subject must be dot-separated non-empty tokens without whitespace; '*' and '>' are allowed only as whole tokens, and '>' only as the last one"
	Subject string `json:"subject,omitempty"`

	// queueGroup subscribes in this NATS queue group, so that the values
	// are shared between the group's members (the Record's replicas, and
	// any other subscriber in the same group) instead of each receiving
	// all of them.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^[^.*>\\s]+([.][^.*>\\s]+)*$')",message="spec.source.nats.queueGroup must be dot-separated non-empty tokens without whitespace or wildcards ('*', '>')"
	QueueGroup string `json:"queueGroup,omitempty"`

	// url is the NATS server to connect to, or a comma-separated list of
	// servers of one cluster: nats://, tls://, ws:// or wss:// URLs. When
	// unset, the manager's default (its --nats-url flag) is used.
	// Credentials do not belong here: use credentialsSecretRef.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.matches(r'^(nats|tls|ws|wss)://[^\\s,/]+(/[^\\s,]*)?(,(nats|tls|ws|wss)://[^\\s,/]+(/[^\\s,]*)?)*$')",message="spec.source.nats.url must be a comma-separated list of nats://, tls://, ws:// or wss:// URLs with a host"
	// +kubebuilder:validation:XValidation:rule="!self.contains('@')",message="spec.source.nats.url must not carry credentials: put them in the Secret named by spec.source.nats.credentialsSecretRef"
	URL string `json:"url,omitempty"`

	// credentialsSecretRef names a Secret in the Record's namespace that is
	// mounted read-only into the buffer pods for the NATS connection. Its
	// keys, all optional: creds (a NATS credentials file), token, username
	// and password, ca.crt (CA bundle for TLS), tls.crt and tls.key (a
	// client certificate). The manager never reads the Secret.
	// +optional
	CredentialsSecretRef *SecretReference `json:"credentialsSecretRef,omitempty"`
}

// SecretReference names a Secret in the referrer's namespace.
type SecretReference struct {
	// name is the Secret's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="spec.source.nats.credentialsSecretRef.name must be a valid Secret name (a DNS subdomain: lowercase letters, digits, '-' and '.')"
	Name string `json:"name"`
}

// SchedulingSpec constrains where buffer pods run. Each field is copied to
// the pod template as is.
type SchedulingSpec struct {
	// nodeSelector restricts the pods to nodes with these labels.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations let the pods run on nodes with matching taints.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// affinity is the pods' node and pod (anti-)affinity.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// topologySpreadConstraints say how the pods spread across the
	// cluster. Unset or empty: across nodes, softly (maxSkew 1 on
	// kubernetes.io/hostname, ScheduleAnyway, counting the pods of the
	// current revision only), so that one node going down takes at most
	// its share of a Record's replicas, and a cluster of one node still
	// runs them all. Set, they replace that default whole.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
}

// RecordStatus is what the manager observes of a Record: conditions from
// the cluster (the Deployment) and from the buffer processes' reports, and
// the counters those reports carry.
//
// The counters are sums over the buffer pods whose latest report is fresh
// (younger than the manager's --report-stale-after). Each pod counts from its own
// start, so a restarted or replaced pod starts again from zero, and a pod
// whose reports stop leaves the sums: the counters are not monotonic
// across pod churn. When no pod reports, the counters keep their last
// values and the Reporting condition says they are stale; status.pods,
// the per-pod detail, then lists only the running pods gone silent.
type RecordStatus struct {
	// observedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions are the Record's conditions: Ready (the summary),
	// Available, Reconciling, Stalled, NATSConnected, Reporting, with
	// spec.persistence StreamReady, and while app pods run the Record's
	// buffer as an injected sidecar SidecarsCurrent (docs/status.md).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// endpoint is the consumer API URL of this record, served by the
	// Service: http://NAME-recbuf.NAMESPACE.svc:8080/v1/records/NAME.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// subject is the NATS subject the buffer subscribes to (the spec's or
	// the default).
	// +optional
	Subject string `json:"subject,omitempty"`

	// reportingPods is the number of buffer pods whose latest report is
	// fresh: the pods the counters are summed over.
	// +optional
	ReportingPods int32 `json:"reportingPods,omitempty"`

	// The counters, summed over the reporting pods.
	RecordCounters `json:",inline"`

	// lastReportTime is when the manager last received a report from a
	// buffer pod of this Record (the manager's clock).
	// +optional
	LastReportTime *metav1.Time `json:"lastReportTime,omitempty"`

	// pods is the detail behind the sums: one entry per buffer pod with a
	// fresh report, and one per running buffer pod that has gone silent
	// (connected false), by name. It tells which pod is disconnected or
	// dropping input when the sums say that one is. At most
	// MaxPodStatuses entries (the first by name); a rollout may briefly
	// run more pods than spec.replicas.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=128
	Pods []RecordPodStatus `json:"pods,omitempty"`

	// stream is the state of the Record's JetStream stream (with
	// spec.persistence), sampled at most every report interval.
	// +optional
	Stream *StreamStatus `json:"stream,omitempty"`

	// sidecars is the number of running app pods into which the sidecar
	// injection webhook put this Record's buffer process (docs/sidecar.md);
	// their pods are in pods too.
	// +optional
	Sidecars int32 `json:"sidecars,omitempty"`

	// outdatedSidecars is the number of those that were admitted with an
	// older metadata.generation of this Record than the current one: they
	// run the spec as it was, until their pods are recreated.
	// +optional
	OutdatedSidecars int32 `json:"outdatedSidecars,omitempty"`
}

// StreamStatus is the state of a Record's JetStream stream as the manager
// last read it.
type StreamStatus struct {
	// name is the stream's name.
	// +required
	// +kubebuilder:validation:MaxLength=255
	Name string `json:"name"`

	// messages is the number of values the stream holds.
	// +optional
	Messages int64 `json:"messages,omitempty"`

	// bytes is the size of the values the stream holds, in bytes.
	// +optional
	Bytes int64 `json:"bytes,omitempty"`

	// firstSequence is the stream sequence of the oldest value held.
	// +optional
	FirstSequence int64 `json:"firstSequence,omitempty"`

	// lastSequence is the stream sequence of the newest value taken in.
	// +optional
	LastSequence int64 `json:"lastSequence,omitempty"`
}

// RecordCounters are a Record's counters, from what its buffer processes
// report (internal/report.Counters). They are inline in the status:
// status.produced, status.delivered and so on. Every buffer pod without a
// queue group holds a whole copy of the Record, so the counters of what
// happens to the values (produced, evicted, overwrites, dropped) are the
// most any reporting pod counts, not their sum; with a queue group the
// pods split the values and those counters are summed. The consumers'
// counters (delivered, subscribers, lagEvents, laggedValues, skipped) are
// summed over the pods. status.pods holds each pod's own figures.
type RecordCounters struct {
	// produced counts values the Record took in, each once however many
	// of its pods hold a copy.
	// +optional
	Produced int64 `json:"produced,omitempty"`

	// delivered counts values handed to consumers, summed over consumers.
	// +optional
	Delivered int64 `json:"delivered,omitempty"`

	// subscribers is the number of consumers connected now.
	// +optional
	Subscribers int64 `json:"subscribers,omitempty"`

	// lagEvents counts the times a consumer fell behind a SpmcRing and
	// was told how many values it missed.
	// +optional
	LagEvents int64 `json:"lagEvents,omitempty"`

	// laggedValues counts values evicted from a SpmcRing before a consumer
	// read them, summed over consumers.
	// +optional
	LaggedValues int64 `json:"laggedValues,omitempty"`

	// skipped counts values of a SingleLatest replaced before a consumer
	// read them, summed over consumers.
	// +optional
	Skipped int64 `json:"skipped,omitempty"`

	// overwrites counts Mailbox values replaced before anyone took them.
	// +optional
	Overwrites int64 `json:"overwrites,omitempty"`

	// evicted counts values a SpmcRing dropped to make room, because it was
	// full or over spec.buffer.maxBytes: each value once, whether or not a
	// consumer missed it (laggedValues counts the consumers' losses).
	// +optional
	Evicted int64 `json:"evicted,omitempty"`

	// dropped counts input messages refused before the buffer: malformed,
	// oversized, or lost to a slow intake.
	// +optional
	Dropped int64 `json:"dropped,omitempty"`

	// lastMessageTime is when the newest value was taken in by any pod.
	// +optional
	LastMessageTime *metav1.Time `json:"lastMessageTime,omitempty"`
}

// MaxPodStatuses bounds status.pods.
const MaxPodStatuses = 128

// RecordPodStatus is one buffer pod's latest report. It holds no report
// time on purpose: a pod's identical reports then cause no status write.
type RecordPodStatus struct {
	// name is the buffer pod's name.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// connected is whether the pod's NATS link works, as the manager
	// sees it: true while the pod's reports arrive, false once a running
	// pod has sent none for longer than one and a half report intervals
	// (its reports travel on the link its intake uses).
	// +required
	Connected bool `json:"connected"`

	// produced counts values this pod took into its buffer.
	// +optional
	Produced int64 `json:"produced,omitempty"`

	// subscribers is the number of consumers connected to this pod.
	// +optional
	Subscribers int64 `json:"subscribers,omitempty"`

	// dropped counts messages this pod refused (oversized or malformed).
	// +optional
	Dropped int64 `json:"dropped,omitempty"`
}

// +kubebuilder:object:root=true

// RecordList is a list of Records.
type RecordList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the Records.
	Items []Record `json:"items"`
}

// ChildName is the name of the Record's Deployment and Service.
func (r *Record) ChildName() string { return r.Name + ChildNameSuffix }

// DefaultSubject is the subject a Record reads when spec.source.nats.subject
// is unset: records.<namespace>.<name>. The standalone buffer process
// derives the same subject for --record-name without --nats-subject; a
// test in controllers, which passes it to the buffer process, checks that
// the two agree.
func (r *Record) DefaultSubject() string { return "records." + r.Namespace + "." + r.Name }

// EffectiveSubject is the subject the Record's buffer subscribes to.
func (r *Record) EffectiveSubject() string {
	if s := r.Spec.Source; s != nil && s.NATS.Subject != "" {
		return s.NATS.Subject
	}
	return r.DefaultSubject()
}

// Persistent says whether the Record's values are kept in JetStream.
func (r *Record) Persistent() bool { return r.Spec.Persistence != nil }

// AdoptsStream says whether the Record reads a stream the user manages.
func (r *Record) AdoptsStream() bool { return r.Persistent() && r.Spec.Persistence.Stream != "" }

// StreamDeletionPolicy is spec.persistence.deletionPolicy with its
// default; an adopted stream is always retained.
func (r *Record) StreamDeletionPolicy() DeletionPolicy {
	switch {
	case !r.Persistent() || r.AdoptsStream():
		return DeletionPolicyRetain
	case r.Spec.Persistence.DeletionPolicy != "":
		return r.Spec.Persistence.DeletionPolicy
	default:
		return DefaultDeletionPolicy
	}
}

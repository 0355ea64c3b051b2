package v1alpha1

// The label and annotations by which an app's pod asks for the buffers of
// Records injected beside its containers (docs/sidecar.md). A pod asks
// with both the label (the webhook's objectSelector selects on labels
// only, so that the API server never calls it for other pods) and the
// records annotation.
const (
	// LabelInject, "true" on a pod, sends it to the injection webhook.
	LabelInject = "recbuf.dev/inject"
	// AnnotationRecords is the comma-separated list of the Records, in the
	// pod's own namespace, whose buffer processes the pod gets.
	AnnotationRecords = "recbuf.dev/records"
	// AnnotationPort is the consumer API port of the first Record listed
	// (default 8080); the next ones get the ports after it, in the order
	// listed. The API listens on AnnotationListenAddress.
	AnnotationPort = "recbuf.dev/port"
	// AnnotationListenAddress is the address the consumer APIs listen on:
	// a loopback address (default 127.0.0.1), so that only the pod's own
	// containers read its buffers, or every interface (0.0.0.0 or ::), so
	// that other pods may too. A pod's own IP is not known at admission,
	// so nothing in between.
	AnnotationListenAddress = "recbuf.dev/listen-address"
	// AnnotationMetricsPort is the metrics port of the first Record listed
	// (default 9090), the next ones the ports after it. It listens on
	// every interface: the kubelet probes it there.
	AnnotationMetricsPort = "recbuf.dev/metrics-port"
	// AnnotationRecordGenerations is stamped by the webhook: each injected
	// Record's metadata.generation at admission, "NAME=GEN,…". A Record
	// whose generation moved on says its injected buffers are outdated.
	AnnotationRecordGenerations = "recbuf.dev/record-generations"
)

// The annotations a cluster admin sets on a Namespace.
const (
	// AnnotationNamespaceStreamMaxBytes on a Namespace is the most its
	// durable Records' streams may reserve in NATS together (the sum of
	// their max_bytes), a quantity such as 256Mi; "0" is no limit. It
	// overrides the manager's --namespace-stream-max-bytes there
	// (docs/persistence.md#quotas).
	AnnotationNamespaceStreamMaxBytes = "recbuf.dev/stream-max-bytes"
	// AnnotationNamespaceConsumerAuthentication on a Namespace, set to
	// ConsumerAuthenticationAllowed, lets its Records authenticate their
	// consumers where the manager requires the admin's opt-in
	// (--consumer-authentication-opt-in; docs/security.md#consumer-authentication).
	AnnotationNamespaceConsumerAuthentication = "recbuf.dev/consumer-authentication"
	// ConsumerAuthenticationAllowed is the opt-in value of
	// AnnotationNamespaceConsumerAuthentication.
	ConsumerAuthenticationAllowed = "Allowed"
)

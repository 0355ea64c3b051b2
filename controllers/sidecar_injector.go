package controllers

// This file is the sidecar mode: a mutating admission webhook, served by
// the manager, injects the buffer process of each Record a pod names into
// that pod, as a native sidecar (an init container with restartPolicy
// Always, Kubernetes 1.29 and later). The container is the one the
// Record's Deployment runs (mutateContainer), laid out beside the app's:
// its consumer API on localhost, its own port per Record, its volumes
// named apart. docs/sidecar.md is the user's side of it.
//
// Every refusal names the annotation and the Record, and is the admission
// answer itself: a Deployment whose pods are refused shows it in its
// ReplicaSet's FailedCreate events, and the ReplicaSet retries, so a
// Record created a moment later is picked up without anyone's help.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// The labels and annotations of the sidecar mode. A pod asks with both the
// label (the webhook's objectSelector selects on labels only, so that the
// API server never calls it for other pods) and the records annotation.
const (
	// LabelInject, "true" on a pod, sends it to the webhook.
	LabelInject = "recbuf.dev/inject"
	// AnnotationRecords is the comma-separated list of the Records, in the
	// pod's own namespace, whose buffer processes the pod gets.
	AnnotationRecords = "recbuf.dev/records"
	// AnnotationPort is the consumer API port of the first Record listed
	// (default DefaultSidecarPort); the next ones get the ports after it,
	// in the order listed. The API listens on AnnotationListenAddress.
	AnnotationPort = "recbuf.dev/port"
	// AnnotationListenAddress is the address the consumer APIs listen on:
	// a loopback address (default DefaultSidecarListenAddress), so that
	// only the pod's own containers read its buffers, or every interface
	// (0.0.0.0 or ::), so that other pods may too. A pod's own IP is not
	// known at admission, so nothing in between.
	AnnotationListenAddress = "recbuf.dev/listen-address"
	// AnnotationMetricsPort is the metrics port of the first Record listed
	// (default DefaultSidecarMetricsPort), the next ones the ports after
	// it. It listens on every interface: the kubelet probes it there.
	AnnotationMetricsPort = "recbuf.dev/metrics-port"
	// AnnotationRecordGenerations is stamped by the webhook: each injected
	// Record's metadata.generation at admission, "NAME=GEN,…". A Record
	// whose generation moved on says its sidecars are outdated.
	AnnotationRecordGenerations = "recbuf.dev/record-generations"

	// DefaultSidecarPort and DefaultSidecarMetricsPort are the first
	// Record's ports when the pod names none.
	DefaultSidecarPort        = 8080
	DefaultSidecarMetricsPort = 9090
	// DefaultSidecarListenAddress keeps the buffers to the pod itself.
	DefaultSidecarListenAddress = "127.0.0.1"
	// SidecarContainerPrefix prefixes the Record's name to name its
	// sidecar container.
	SidecarContainerPrefix = "recbuf-"
	// sidecarVolumeSuffix and the Record's index in the annotation name
	// its volumes apart from the app's and from each other's.
	sidecarVolumeSuffix = "-recbuf-"
)

// SidecarWebhookPath is where the manager serves the webhook.
const SidecarWebhookPath = "/mutate-v1-pod"

// sidecarRequest is what a pod's annotations ask for.
type sidecarRequest struct {
	records           []string
	port, metricsPort int32
	// listenHost is the consumer APIs' listen address.
	listenHost string
}

// parseSidecarRequest reads the pod's annotations. The errors name the
// annotation.
func parseSidecarRequest(annotations map[string]string) (sidecarRequest, error) {
	req := sidecarRequest{port: DefaultSidecarPort, metricsPort: DefaultSidecarMetricsPort, listenHost: DefaultSidecarListenAddress}
	raw, ok := annotations[AnnotationRecords]
	if !ok || strings.TrimSpace(raw) == "" {
		return req, fmt.Errorf("annotation %s is missing or empty: it lists the Records whose buffers the pod gets", AnnotationRecords)
	}
	for name := range strings.SplitSeq(raw, ",") {
		name = strings.TrimSpace(name)
		switch {
		case strings.Contains(name, "/"):
			return req, fmt.Errorf("annotation %s: Record %q: only Records of the pod's own namespace can be injected; name it without a namespace", AnnotationRecords, name)
		case name == "":
			return req, fmt.Errorf("annotation %s: %q has an empty Record name", AnnotationRecords, raw)
		case len(validation.IsDNS1123Label(SidecarContainerPrefix+name)) > 0:
			return req, fmt.Errorf("annotation %s: Record %q: its name must make the container name %q, a DNS label of at most 63 characters", AnnotationRecords, name, SidecarContainerPrefix+name)
		case slices.Contains(req.records, name):
			return req, fmt.Errorf("annotation %s: Record %q is listed twice", AnnotationRecords, name)
		}
		req.records = append(req.records, name)
	}
	var err error
	if req.port, err = parsePort(annotations, AnnotationPort, DefaultSidecarPort, len(req.records)); err != nil {
		return req, err
	}
	if req.metricsPort, err = parsePort(annotations, AnnotationMetricsPort, DefaultSidecarMetricsPort, len(req.records)); err != nil {
		return req, err
	}
	if lo, hi := req.port, req.port+int32(len(req.records)); req.metricsPort < hi && lo < req.metricsPort+int32(len(req.records)) {
		return req, fmt.Errorf("annotations %s=%d and %s=%d: the consumer and metrics ports of %d Records overlap", AnnotationPort, req.port, AnnotationMetricsPort, req.metricsPort, len(req.records))
	}
	if raw, ok := annotations[AnnotationListenAddress]; ok {
		ip, err := netip.ParseAddr(strings.TrimSpace(raw))
		if err != nil || (!ip.IsLoopback() && !ip.IsUnspecified()) || ip.Zone() != "" {
			return req, fmt.Errorf("annotation %s: %q is neither a loopback address (127.0.0.1, ::1) nor every interface (0.0.0.0, ::)", AnnotationListenAddress, raw)
		}
		req.listenHost = ip.String()
	}
	return req, nil
}

// listensBeyondThePod says whether other pods can reach the consumer APIs.
func (r sidecarRequest) listensBeyondThePod() bool {
	return !netip.MustParseAddr(r.listenHost).IsLoopback()
}

// listenRefusal says why rec's sidecar cannot listen where req asks (""
// when it can): a Record whose consumers must show a token cannot be read
// from other pods through a sidecar, which runs as the app's
// ServiceAccount and so may not review tokens.
func listenRefusal(rec *recbufv1alpha1.Record, req sidecarRequest) string {
	if !req.listensBeyondThePod() || !consumerAuthentication(rec) {
		return ""
	}
	return fmt.Sprintf("annotation %s=%s: Record %s/%s asks its consumers for ServiceAccount tokens (spec.consumers.authentication), which its sidecar, running as the app's ServiceAccount, cannot review; listen on %s, or let other pods read the shared service %s",
		AnnotationListenAddress, req.listenHost, rec.Namespace, rec.Name, DefaultSidecarListenAddress, rec.ChildName())
}

// parsePort reads the port annotation key: n ports from it on must be
// valid.
func parsePort(annotations map[string]string, key string, def int32, n int) (int32, error) {
	raw, ok := annotations[key]
	if !ok {
		return def, nil
	}
	p, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 32)
	if err != nil || p < 1 || p+int64(n)-1 > 65535 {
		return 0, fmt.Errorf("annotation %s: %q is not a port from 1 to %d", key, raw, 65535-n+1)
	}
	return int32(p), nil
}

// portClash says which of the pod's own declared container ports the
// sidecars' ports would take ("" when none): two processes of a pod cannot
// listen on one port, and the sidecar would fail to start. Ports the app
// listens on without declaring them are not known here.
func portClash(pod *corev1.Pod, req sidecarRequest) string {
	n := int32(len(req.records))
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		for _, p := range c.Ports {
			for key, first := range map[string]int32{AnnotationPort: req.port, AnnotationMetricsPort: req.metricsPort} {
				if p.ContainerPort >= first && p.ContainerPort < first+n {
					return fmt.Sprintf("annotation %s=%d: port %d is container %q's own; choose another with the annotation", key, first, p.ContainerPort, c.Name)
				}
			}
		}
	}
	return ""
}

// sidecarLayout is the layout of the i-th Record's container in an app pod.
func sidecarLayout(rec *recbufv1alpha1.Record, req sidecarRequest, i int) bufferLayout {
	return bufferLayout{
		container:    SidecarContainerPrefix + rec.Name,
		httpHost:     req.listenHost,
		httpPort:     req.port + int32(i),
		metricsPort:  req.metricsPort + int32(i),
		volumeSuffix: sidecarVolumeSuffix + strconv.Itoa(i),
		secretMode:   0o444,
		// On loopback only the pod's own containers reach it: there is no
		// one to authenticate; beyond the pod, listenRefusal keeps out the
		// Records that would need it (docs/sidecar.md).
		consumerAuthentication: false,
	}
}

// sidecarRefusal says why rec cannot be injected ("" when it can). The
// message names the annotation and the Record.
func sidecarRefusal(rec *recbufv1alpha1.Record, cfg Config) string {
	prefix := fmt.Sprintf("annotation %s: Record %s/%s", AnnotationRecords, rec.Namespace, rec.Name)
	switch {
	case !rec.DeletionTimestamp.IsZero():
		return prefix + " is being deleted"
	case rec.Spec.Buffer.Type == recbufv1alpha1.BufferTypeMailbox:
		// Every replica would hold its own mailbox, each taking every
		// command: a command would be taken once per pod.
		return prefix + " is a Mailbox, which cannot be injected: each pod would hold a mailbox of its own and take every command; read it from the shared service " + rec.ChildName()
	case rec.Status.ObservedGeneration == 0:
		// Its settings ConfigMap and report key Secret, which the sidecar
		// mounts, are made on the manager's first pass.
		return prefix + " is not set up by the manager yet: retry in a moment"
	}
	if n := checkNATSSource(rec, cfg); n.reason != "" {
		return prefix + ": " + n.message
	}
	if _, err := bufferMemory(rec, cfg); err != nil {
		return prefix + ": " + err.Error()
	}
	return ""
}

// injectSidecars adds one native sidecar per Record to pod, in the order
// of req, before the pod's own init containers so that they run too, and
// stamps the Records' generations.
func injectSidecars(pod *corev1.Pod, recs []*recbufv1alpha1.Record, req sidecarRequest, cfg Config) {
	var sidecars []corev1.Container
	gens := make([]string, 0, len(recs))
	for i, rec := range recs {
		l := sidecarLayout(rec, req, i)
		var c corev1.Container
		mutateContainer(&c, rec, cfg, l)
		c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		// The app's containers start once the consumer API listens.
		c.StartupProbe = httpProbe("/healthz", l.metricsProbePort(), 1)
		c.StartupProbe.FailureThreshold = 30
		// The app's pod security context is the app's: the sidecar's own
		// says all that restricted Pod Security asks.
		c.SecurityContext.RunAsUser = ptr.To[int64](RunAsID)
		c.SecurityContext.RunAsGroup = ptr.To[int64](RunAsID)
		c.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
		sidecars = append(sidecars, c)
		pod.Spec.Volumes = append(pod.Spec.Volumes, bufferVolumes(rec, cfg, l)...)
		gens = append(gens, rec.Name+"="+strconv.FormatInt(rec.Generation, 10))
	}
	pod.Spec.InitContainers = append(sidecars, pod.Spec.InitContainers...)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationRecordGenerations] = strings.Join(gens, ",")
}

// injectedGenerations reads the generations the webhook stamped on pod, by
// Record name.
func injectedGenerations(pod *corev1.Pod) map[string]int64 {
	out := map[string]int64{}
	for kv := range strings.SplitSeq(pod.Annotations[AnnotationRecordGenerations], ",") {
		name, g, ok := strings.Cut(kv, "=")
		if n, err := strconv.ParseInt(g, 10, 64); ok && err == nil {
			out[name] = n
		}
	}
	return out
}

// SidecarInjector is the webhook's admission handler. Create it with all
// fields set; it is then safe for concurrent use.
type SidecarInjector struct {
	// Client reads Records (the manager's cache).
	Client client.Reader
	// Decoder decodes the pods admitted (admission.NewDecoder).
	Decoder admission.Decoder
	// Config is the manager's, the one the Deployments are built from.
	Config Config
}

// Handle injects the sidecars a pod asks for, or refuses the pod saying
// why. A pod that does not carry LabelInject="true" is let through
// untouched (the webhook's objectSelector does not send it, but a
// configuration edited by hand might).
func (h *SidecarInjector) Handle(ctx context.Context, req admission.Request) admission.Response {
	pod := &corev1.Pod{}
	if err := h.Decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the pod: %w", err))
	}
	if pod.Labels[LabelInject] != "true" {
		return admission.Allowed("the pod does not ask for recbuf sidecars")
	}
	if _, done := pod.Annotations[AnnotationRecordGenerations]; done {
		return admission.Allowed("recbuf sidecars already injected")
	}
	sreq, err := parseSidecarRequest(pod.Annotations)
	if err != nil {
		return admission.Denied(err.Error())
	}
	if why := portClash(pod, sreq); why != "" {
		return admission.Denied(why)
	}
	recs := make([]*recbufv1alpha1.Record, 0, len(sreq.records))
	for _, name := range sreq.records {
		rec := &recbufv1alpha1.Record{}
		if err := h.Client.Get(ctx, types.NamespacedName{Namespace: req.Namespace, Name: name}, rec); err != nil {
			if apierrors.IsNotFound(err) {
				return admission.Denied(fmt.Sprintf("annotation %s: Record %s/%s does not exist", AnnotationRecords, req.Namespace, name))
			}
			return admission.Errored(http.StatusInternalServerError, fmt.Errorf("reading Record %s/%s: %w", req.Namespace, name, err))
		}
		if why := cmp.Or(sidecarRefusal(rec, h.Config), listenRefusal(rec, sreq)); why != "" {
			return admission.Denied(why)
		}
		recs = append(recs, rec)
	}
	injectSidecars(pod, recs, sreq, h.Config)
	mutated, err := json.Marshal(pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("encoding the pod: %w", err))
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, mutated)
}

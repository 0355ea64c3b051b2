// Package webhook is recbuf's admission webhook for pods: it injects the
// buffer process of each Record a pod names into that pod, as a native
// sidecar (an init container with restartPolicy Always, Kubernetes 1.29
// and later). The container is the one the Record's Deployment runs
// (package bufferpod), placed beside the app's: its consumer API on
// localhost, its own port per Record, its volumes named apart.
// docs/sidecar.md is the user's side of it.
//
// Every refusal names the annotation and the Record, and is the admission
// answer itself: a Deployment whose pods are refused shows it in its
// ReplicaSet's FailedCreate events, and the ReplicaSet retries, so a
// Record created a moment later is picked up without anyone's help.
package webhook

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
	"github.com/recbuf/recbuf/internal/bufferpod"
	"github.com/recbuf/recbuf/internal/natspolicy"
)

// The defaults of the pod's annotations (recbufv1alpha1.Annotation*).
const (
	// DefaultPort and DefaultMetricsPort are the first Record's ports when
	// the pod names none.
	DefaultPort        = 8080
	DefaultMetricsPort = 9090
	// DefaultListenAddress keeps the buffers to the pod itself.
	DefaultListenAddress = "127.0.0.1"
)

// Path is where the manager serves the webhook.
const Path = "/mutate-v1-pod"

// injectRequest is what a pod's annotations ask for.
type injectRequest struct {
	records           []string
	port, metricsPort int32
	// listenHost is the consumer APIs' listen address.
	listenHost string
}

// parseInjectRequest reads the pod's annotations. The errors name the
// annotation.
func parseInjectRequest(annotations map[string]string) (injectRequest, error) {
	req := injectRequest{port: DefaultPort, metricsPort: DefaultMetricsPort, listenHost: DefaultListenAddress}
	raw, ok := annotations[recbufv1alpha1.AnnotationRecords]
	if !ok || strings.TrimSpace(raw) == "" {
		return req, fmt.Errorf("annotation %s is missing or empty: it lists the Records whose buffers the pod gets", recbufv1alpha1.AnnotationRecords)
	}
	for name := range strings.SplitSeq(raw, ",") {
		name = strings.TrimSpace(name)
		switch {
		case strings.Contains(name, "/"):
			return req, fmt.Errorf("annotation %s: Record %q: only Records of the pod's own namespace can be injected; name it without a namespace", recbufv1alpha1.AnnotationRecords, name)
		case name == "":
			return req, fmt.Errorf("annotation %s: %q has an empty Record name", recbufv1alpha1.AnnotationRecords, raw)
		case len(validation.IsDNS1123Label(bufferpod.InjectedContainerPrefix+name)) > 0:
			return req, fmt.Errorf("annotation %s: Record %q: its name must make the container name %q, a DNS label of at most 63 characters", recbufv1alpha1.AnnotationRecords, name, bufferpod.InjectedContainerPrefix+name)
		case slices.Contains(req.records, name):
			return req, fmt.Errorf("annotation %s: Record %q is listed twice", recbufv1alpha1.AnnotationRecords, name)
		}
		req.records = append(req.records, name)
	}
	var err error
	if req.port, err = parsePort(annotations, recbufv1alpha1.AnnotationPort, DefaultPort, len(req.records)); err != nil {
		return req, err
	}
	if req.metricsPort, err = parsePort(annotations, recbufv1alpha1.AnnotationMetricsPort, DefaultMetricsPort, len(req.records)); err != nil {
		return req, err
	}
	if lo, hi := req.port, req.port+int32(len(req.records)); req.metricsPort < hi && lo < req.metricsPort+int32(len(req.records)) {
		return req, fmt.Errorf("annotations %s=%d and %s=%d: the consumer and metrics ports of %d Records overlap", recbufv1alpha1.AnnotationPort, req.port, recbufv1alpha1.AnnotationMetricsPort, req.metricsPort, len(req.records))
	}
	if raw, ok := annotations[recbufv1alpha1.AnnotationListenAddress]; ok {
		ip, err := netip.ParseAddr(strings.TrimSpace(raw))
		if err != nil || (!ip.IsLoopback() && !ip.IsUnspecified()) || ip.Zone() != "" {
			return req, fmt.Errorf("annotation %s: %q is neither a loopback address (127.0.0.1, ::1) nor every interface (0.0.0.0, ::)", recbufv1alpha1.AnnotationListenAddress, raw)
		}
		req.listenHost = ip.String()
	}
	return req, nil
}

// listensBeyondThePod says whether other pods can reach the consumer APIs.
func (r injectRequest) listensBeyondThePod() bool {
	return !netip.MustParseAddr(r.listenHost).IsLoopback()
}

// listenRefusal says why rec's sidecar cannot listen where req asks (""
// when it can): a Record whose consumers must show a token cannot be read
// from other pods through a sidecar, which runs as the app's
// ServiceAccount and so may not review tokens.
func listenRefusal(rec *recbufv1alpha1.Record, req injectRequest) string {
	if !req.listensBeyondThePod() || !bufferpod.ConsumerAuthentication(rec) {
		return ""
	}
	return fmt.Sprintf("annotation %s=%s: Record %s/%s asks its consumers for ServiceAccount tokens (spec.consumers.authentication), which its sidecar, running as the app's ServiceAccount, cannot review; listen on %s, or let other pods read the shared service %s",
		recbufv1alpha1.AnnotationListenAddress, req.listenHost, rec.Namespace, rec.Name, DefaultListenAddress, rec.ChildName())
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
func portClash(pod *corev1.Pod, req injectRequest) string {
	n := int32(len(req.records))
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		for _, p := range c.Ports {
			for key, first := range map[string]int32{recbufv1alpha1.AnnotationPort: req.port, recbufv1alpha1.AnnotationMetricsPort: req.metricsPort} {
				if p.ContainerPort >= first && p.ContainerPort < first+n {
					return fmt.Sprintf("annotation %s=%d: port %d is container %q's own; choose another with the annotation", key, first, p.ContainerPort, c.Name)
				}
			}
		}
	}
	return ""
}

// injectRefusal says why rec cannot be injected ("" when it can). The
// message names the annotation and the Record.
func injectRefusal(rec *recbufv1alpha1.Record, cfg Config) string {
	prefix := fmt.Sprintf("annotation %s: Record %s/%s", recbufv1alpha1.AnnotationRecords, rec.Namespace, rec.Name)
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
	if n := natspolicy.Check(rec, cfg.NATSPolicy); n.Refused() {
		return prefix + ": " + n.Message
	}
	if _, err := bufferpod.Memory(rec, cfg.BufferPod); err != nil {
		return prefix + ": " + err.Error()
	}
	return ""
}

// inject adds one native sidecar per Record to pod, in the order of req,
// before the pod's own init containers so that they run too, and stamps
// the Records' generations.
func inject(pod *corev1.Pod, recs []*recbufv1alpha1.Record, req injectRequest, cfg bufferpod.Config) {
	var sidecars []corev1.Container
	for i, rec := range recs {
		p := bufferpod.Injected(rec, req.listenHost, req.port, req.metricsPort, i)
		var c corev1.Container
		bufferpod.MutateContainer(&c, rec, cfg, p)
		c.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		// The app's containers start once the consumer API listens.
		c.StartupProbe = bufferpod.HTTPProbe("/healthz", p.MetricsProbePort(), 1)
		c.StartupProbe.FailureThreshold = 30
		// The app's pod security context is the app's: the sidecar's own
		// says all that restricted Pod Security asks.
		c.SecurityContext.RunAsUser = ptr.To[int64](bufferpod.RunAsID)
		c.SecurityContext.RunAsGroup = ptr.To[int64](bufferpod.RunAsID)
		c.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
		sidecars = append(sidecars, c)
		pod.Spec.Volumes = append(pod.Spec.Volumes, bufferpod.Volumes(rec, cfg, p)...)
	}
	pod.Spec.InitContainers = append(sidecars, pod.Spec.InitContainers...)
	bufferpod.StampGenerations(pod, recs)
}

// Config is what the webhook builds and checks the injected buffers
// with: the manager's, the same the Record's Deployments are built from.
type Config struct {
	BufferPod  bufferpod.Config
	NATSPolicy natspolicy.Policy
}

// Injector is the webhook's admission handler. Create it with all fields
// set; it is then safe for concurrent use.
type Injector struct {
	// Client reads Records (the manager's cache).
	Client client.Reader
	// Decoder decodes the pods admitted (admission.NewDecoder).
	Decoder admission.Decoder
	// Config is the manager's.
	Config Config
}

// Handle injects the sidecars a pod asks for, or refuses the pod saying
// why. A pod that does not carry recbufv1alpha1.LabelInject="true" is let through
// untouched (the webhook's objectSelector does not send it, but a
// configuration edited by hand might).
func (h *Injector) Handle(ctx context.Context, req admission.Request) admission.Response {
	pod := &corev1.Pod{}
	if err := h.Decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the pod: %w", err))
	}
	if pod.Labels[recbufv1alpha1.LabelInject] != "true" {
		return admission.Allowed("the pod does not ask for recbuf sidecars")
	}
	if _, done := pod.Annotations[recbufv1alpha1.AnnotationRecordGenerations]; done {
		return admission.Allowed("recbuf sidecars already injected")
	}
	sreq, err := parseInjectRequest(pod.Annotations)
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
				return admission.Denied(fmt.Sprintf("annotation %s: Record %s/%s does not exist", recbufv1alpha1.AnnotationRecords, req.Namespace, name))
			}
			return admission.Errored(http.StatusInternalServerError, fmt.Errorf("reading Record %s/%s: %w", req.Namespace, name, err))
		}
		if why := cmp.Or(injectRefusal(rec, h.Config), listenRefusal(rec, sreq)); why != "" {
			return admission.Denied(why)
		}
		recs = append(recs, rec)
	}
	inject(pod, recs, sreq, h.Config.BufferPod)
	mutated, err := json.Marshal(pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("encoding the pod: %w", err))
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, mutated)
}

package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/bufferpod"
)

// NetworkPolicyConfig is what the manager's NetworkPolicies allow
// (--network-policies, --metrics-from-namespace-selector).
type NetworkPolicyConfig struct {
	// Enabled gives every Record a NetworkPolicy; when false, the ones the
	// Records own are deleted.
	Enabled bool
	// MetricsFrom selects the namespaces whose pods may reach the buffer
	// pods' metrics port: where Prometheus runs. Empty selects every
	// namespace; nil selects none.
	MetricsFrom *metav1.LabelSelector
}

// reconcileNetworkPolicy keeps the Record's NetworkPolicy when the
// manager's NetworkPolicies are enabled, and deletes the one it owns when
// they are not, so that turning them off cleans up. It runs before the
// Deployment's phase: new buffer pods are isolated from their first packet
// on. The policy only says who may connect; whether anything enforces it
// is the network plugin's business (docs/security.md#network-policies).
func (r *RecordReconciler) reconcileNetworkPolicy(ctx context.Context, s *recordScope) error {
	np := &networkingv1.NetworkPolicy{ObjectMeta: childMeta(s.record)}
	if !r.Config.NetworkPolicies.Enabled {
		return r.deleteChild(ctx, s, kindNetworkPolicy, np)
	}
	_, err := r.reconcileChild(ctx, s, kindNetworkPolicy, np, func() {
		mutateNetworkPolicy(np, s.record, r.Config.NetworkPolicies)
	})
	return err
}

// mutateNetworkPolicy sets the fields recbuf owns on np: the spec, whole,
// so that any edit of it is reverted.
func mutateNetworkPolicy(np *networkingv1.NetworkPolicy, rec *recbufv1alpha1.Record, cfg NetworkPolicyConfig) {
	np.Labels = mergeLabels(np.Labels, childLabels(rec))
	np.Spec = desiredNetworkPolicySpec(rec, cfg)
}

// desiredNetworkPolicySpec isolates the Record's buffer pods for ingress
// and admits two kinds of connection: to the consumer port from the
// Record's consumers (consumerPeers), and to the metrics port, which also
// serves /healthz and /readyz, from the namespaces cfg.MetricsFrom selects.
// Egress is left alone: the buffer pods must reach NATS wherever it runs.
// The kubelet's probes are not pod traffic; the plugins that enforce
// NetworkPolicy let a node reach its own pods.
func desiredNetworkPolicySpec(rec *recbufv1alpha1.Record, cfg NetworkPolicyConfig) networkingv1.NetworkPolicySpec {
	ingress := []networkingv1.NetworkPolicyIngressRule{{
		Ports: []networkingv1.NetworkPolicyPort{tcpPort(bufferpod.HTTPPort)},
		From:  consumerPeers(rec),
	}}
	if cfg.MetricsFrom != nil {
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{
			Ports: []networkingv1.NetworkPolicyPort{tcpPort(bufferpod.MetricsPort)},
			From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: cfg.MetricsFrom.DeepCopy()}},
		})
	}
	return networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: selectorLabels(rec)},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		Ingress:     ingress,
	}
}

// consumerPeers are the peers of spec.consumers.from, which have a
// NetworkPolicy peer's meaning, or, when it lists none, every pod of the
// Record's namespace.
func consumerPeers(rec *recbufv1alpha1.Record) []networkingv1.NetworkPolicyPeer {
	var from []recbufv1alpha1.ConsumerPeer
	if c := rec.Spec.Consumers; c != nil {
		from = c.From
	}
	if len(from) == 0 {
		return []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}
	}
	peers := make([]networkingv1.NetworkPolicyPeer, len(from))
	for i, p := range from {
		peers[i] = networkingv1.NetworkPolicyPeer{
			PodSelector:       p.PodSelector.DeepCopy(),
			NamespaceSelector: p.NamespaceSelector.DeepCopy(),
		}
	}
	return peers
}

// tcpPort is a NetworkPolicy port by number: the buffer pods' ports are
// fixed, and a number is what every network plugin understands.
func tcpPort(port int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(port))}
}

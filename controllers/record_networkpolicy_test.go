package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// monitoring selects the namespace monitoring, as the manager's default
// --metrics-from-namespace-selector does.
var monitoring = &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "monitoring"}}

func TestTheDesiredNetworkPolicy(t *testing.T) {
	consumerPort := []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(8080))}}
	metricsPort := []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(9090))}}
	ownNamespace := []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}
	apps := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "reader"}}
	team := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: "team", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}}}
	tests := []struct {
		name      string
		consumers *recbufv1alpha1.ConsumersSpec
		cfg       NetworkPolicyConfig
		want      []networkingv1.NetworkPolicyIngressRule
	}{
		{
			name: "a Record without consumers admits its own namespace to the consumer port and Prometheus's to the metrics port",
			cfg:  NetworkPolicyConfig{Enabled: true, MetricsFrom: monitoring},
			want: []networkingv1.NetworkPolicyIngressRule{
				{Ports: consumerPort, From: ownNamespace},
				{Ports: metricsPort, From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: monitoring}}},
			},
		},
		{
			name:      "an empty consumers.from admits the Record's own namespace too",
			consumers: &recbufv1alpha1.ConsumersSpec{Authentication: recbufv1alpha1.ConsumerAuthenticationNone},
			cfg:       NetworkPolicyConfig{Enabled: true, MetricsFrom: monitoring},
			want: []networkingv1.NetworkPolicyIngressRule{
				{Ports: consumerPort, From: ownNamespace},
				{Ports: metricsPort, From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: monitoring}}},
			},
		},
		{
			name: "the peers of consumers.from are the consumer port's, each as written",
			consumers: &recbufv1alpha1.ConsumersSpec{From: []recbufv1alpha1.ConsumerPeer{
				{PodSelector: apps},
				{NamespaceSelector: team},
				{PodSelector: apps, NamespaceSelector: team},
			}},
			cfg: NetworkPolicyConfig{Enabled: true, MetricsFrom: monitoring},
			want: []networkingv1.NetworkPolicyIngressRule{
				{Ports: consumerPort, From: []networkingv1.NetworkPolicyPeer{
					{PodSelector: apps},
					{NamespaceSelector: team},
					{PodSelector: apps, NamespaceSelector: team},
				}},
				{Ports: metricsPort, From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: monitoring}}},
			},
		},
		{
			name: "an empty metrics selector admits every namespace to the metrics port",
			cfg:  NetworkPolicyConfig{Enabled: true, MetricsFrom: &metav1.LabelSelector{}},
			want: []networkingv1.NetworkPolicyIngressRule{
				{Ports: consumerPort, From: ownNamespace},
				{Ports: metricsPort, From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}},
			},
		},
		{
			name: "without a metrics selector no pod reaches the metrics port",
			cfg:  NetworkPolicyConfig{Enabled: true},
			want: []networkingv1.NetworkPolicyIngressRule{{Ports: consumerPort, From: ownNamespace}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecord("tenant", "ring", ringSpec(8))
			rec.Spec.Consumers = tt.consumers
			got := desiredNetworkPolicySpec(rec, tt.cfg)
			want := networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{
					"app.kubernetes.io/name": "recbuf-buffer", "app.kubernetes.io/instance": "ring"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress:     tt.want,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("NetworkPolicy spec (-want +got):\n%s", diff)
			}
			// The Record's selectors are copied, not shared: the policy
			// never aliases the cached Record.
			if rec.Spec.Consumers != nil && len(rec.Spec.Consumers.From) > 0 && got.Ingress[0].From[0].PodSelector == rec.Spec.Consumers.From[0].PodSelector {
				t.Error("the policy shares a selector with the Record")
			}
		})
	}
}

// networkPolicyOf is the NetworkPolicy of the Record ns/name.
func networkPolicyOf(ns, name string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-recbuf"}}
}

func TestARecordsNetworkPolicyFollowsItsConsumers(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "ring", ringSpec(8))
	create(t, g, rec)

	np := networkPolicyOf(ns, "ring")
	g.Eventually(func() error { return get(np) }, timeout, poll).Should(Succeed())
	g.Expect(np.Labels).To(Equal(childLabels(rec)))
	expectControlledBy(g, np, rec)
	g.Expect(np.Spec).To(Equal(desiredNetworkPolicySpec(rec, testConfig.NetworkPolicies)))
	g.Expect(np.Spec.Ingress[0].From).To(Equal([]networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}),
		"by default the Record's own namespace")

	// What the API server stores is what the reconciler wants: an
	// unchanged Record causes no update.
	want := np.DeepCopy()
	g.Expect(controllerutil.SetControllerReference(rec, want, k8s.Scheme())).To(Succeed())
	mutateNetworkPolicy(want, rec, testConfig.NetworkPolicies)
	g.Expect(equality.Semantic.DeepEqual(want, np)).To(BeTrue(), "the stored NetworkPolicy differs from the desired one")

	consumersFrom := func(peers ...recbufv1alpha1.ConsumerPeer) {
		update(g, rec, func(r *recbufv1alpha1.Record) { r.Spec.Consumers = &recbufv1alpha1.ConsumersSpec{From: peers} })
	}
	readers := recbufv1alpha1.ConsumerPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"readers": "true"}}}
	consumersFrom(readers)
	g.Eventually(func(g Gomega) {
		g.Expect(get(np)).To(Succeed())
		g.Expect(np.Spec.Ingress[0].From).To(Equal([]networkingv1.NetworkPolicyPeer{{NamespaceSelector: readers.NamespaceSelector}}))
	}, timeout, poll).Should(Succeed(), "updated when spec.consumers.from changes")
	consumersFrom()
	g.Eventually(func(g Gomega) {
		g.Expect(get(np)).To(Succeed())
		g.Expect(np.Spec.Ingress[0].From).To(Equal([]networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}))
	}, timeout, poll).Should(Succeed(), "back to the own namespace when the list is emptied")

	// An edit that opens the consumer port to everyone is reverted.
	update(g, np, func(np *networkingv1.NetworkPolicy) { np.Spec.Ingress[0].From = nil })
	g.Eventually(func(g Gomega) {
		g.Expect(get(np)).To(Succeed())
		g.Expect(np.Spec).To(Equal(desiredNetworkPolicySpec(rec, testConfig.NetworkPolicies)))
	}, timeout, poll).Should(Succeed(), "drift is reverted")
}

// TestNetworkPoliciesFollowTheManagersFlag is a manager started without
// --network-policies, then with, then without again: a Record gets a
// NetworkPolicy only while the flag is on, and loses it when it is turned
// off; a NetworkPolicy of that name that is not the Record's is left alone.
func TestNetworkPoliciesFollowTheManagersFlag(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	off := testConfig
	off.NetworkPolicies = NetworkPolicyConfig{MetricsFrom: monitoring}
	on := testConfig
	on.NetworkPolicies = NetworkPolicyConfig{Enabled: true, MetricsFrom: monitoring}

	rec := newRecord(ns, "ring", ringSpec(8))
	rec.Labels = map[string]string{labelOwnManager: "true"}
	key := client.ObjectKeyFromObject(rec)
	np := networkPolicyOf(ns, "ring")

	m := startManager(t, g, off)
	create(t, g, rec)
	// The NetworkPolicy phase comes before the Deployment's, so a finished
	// reconcile that made the Deployment decided about the policy.
	g.Eventually(func() int { return m.get(key) }, timeout, poll).Should(BeNumerically(">=", 1))
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.ObservedGeneration).To(Equal(rec.Generation))
	}, timeout, poll).Should(Succeed())
	g.Expect(apierrors.IsNotFound(get(np))).To(BeTrue(), "no NetworkPolicy without --network-policies")
	m.stop()

	m = startManager(t, g, on)
	g.Eventually(func() error { return get(np) }, timeout, poll).Should(Succeed(), "created once the flag is on")
	expectControlledBy(g, np, rec)
	m.stop()

	m = startManager(t, g, off)
	g.Eventually(func() bool { return apierrors.IsNotFound(get(np)) }, timeout, poll).Should(BeTrue(), "deleted once the flag is off")

	// Someone else's NetworkPolicy of a Record's child name survives.
	foreign := networkPolicyOf(ns, "other")
	foreign.Spec.PodSelector = metav1.LabelSelector{}
	create(t, g, foreign)
	other := newRecord(ns, "other", ringSpec(8))
	other.Labels = map[string]string{labelOwnManager: "true"}
	create(t, g, other)
	otherKey := client.ObjectKeyFromObject(other)
	g.Eventually(func() int { return m.get(otherKey) }, timeout, poll).Should(BeNumerically(">=", 1))
	g.Expect(get(foreign)).To(Succeed())
	g.Expect(foreign.OwnerReferences).To(BeEmpty())
}

func TestARefusedNetworkPolicyStallsTheRecord(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	// A quota of no NetworkPolicy: the API server forbids the create.
	// (Without a quota controller the test writes the status that the
	// quota admission plugin judges by.)
	none := corev1.ResourceList{"count/networkpolicies.networking.k8s.io": resource.MustParse("0")}
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-policies"},
		Spec:       corev1.ResourceQuotaSpec{Hard: none},
	}
	create(t, g, quota)
	quota.Status = corev1.ResourceQuotaStatus{Hard: none, Used: none}
	g.Expect(k8s.Status().Update(t.Context(), quota)).To(Succeed())
	rec := newRecord(ns, "ring", ringSpec(8))
	create(t, g, rec)
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionStalled, metav1.ConditionTrue, recbufv1alpha1.ReasonChildRefused)
		g.Expect(meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionStalled).Message).
			To(HavePrefix("the API server refused the NetworkPolicy: "))
		expectCondition(g, rec, recbufv1alpha1.ConditionReady, metav1.ConditionFalse, recbufv1alpha1.ReasonChildRefused)
	}, timeout, poll).Should(Succeed())
	expectEvent(t, g, rec, corev1.EventTypeWarning, recbufv1alpha1.ReasonChildRefused)

	// Once the quota is gone the policy is made and the Record unstalls.
	g.Expect(k8s.Delete(t.Context(), quota)).To(Succeed())
	g.Eventually(func() error { return get(networkPolicyOf(ns, "ring")) }, timeout, poll).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionStalled, metav1.ConditionFalse, recbufv1alpha1.ReasonProgressing)
	}, timeout, poll).Should(Succeed())
}

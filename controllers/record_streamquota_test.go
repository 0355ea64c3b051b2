package controllers

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/streams"
	"github.com/recbuf/recbuf/internal/testutil/natstest"
)

func TestANamespacesStreamQuotaStallsTheRecordThatWouldExceedIt(t *testing.T) {
	g := NewWithT(t)
	cfg := testConfig
	cfg.NamespaceStreamMaxBytes = 20 << 20 // two default rings of 8Mi, not three
	js := startStreamManagerWith(t, g, natstest.Start(t, natstest.WithJetStream(t)), cfg)
	tenant, other := newNamespace(t), newNamespace(t)
	ring := persistent(ringSpec(8), recbufv1alpha1.PersistenceSpec{})
	// Named in the order they count: creation times have a resolution
	// of a second, the name decides within one.
	a, b, c := newRecord(tenant, "a", ring), newRecord(tenant, "b", ring), newRecord(tenant, "c", ring)
	for _, rec := range []*recbufv1alpha1.Record{a, b, c} {
		createOwned(t, g, rec)
	}
	waitStreamReason(g, a, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)
	waitStreamReason(g, b, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)
	waitStreamReason(g, c, recbufv1alpha1.ReasonStreamQuotaExceeded, recbufv1alpha1.ReasonStreamQuotaExceeded)
	g.Expect(meta.FindStatusCondition(c.Status.Conditions, recbufv1alpha1.ConditionStreamReady).Message).To(Equal(
		"the stream would reserve 8Mi in NATS, and the durable Records of namespace " + tenant + " created before this one reserve 16Mi: " +
			"together beyond the namespace's stream quota 20Mi (the manager's --namespace-stream-max-bytes); " +
			"lower spec.buffer.maxBytes or spec.maxMessageBytes, or ask the cluster admin for more"))
	_, err := js.Stream(t.Context(), streams.Name(tenant, "c"))
	g.Expect(err).To(MatchError(jetstream.ErrStreamNotFound), "no stream is made beyond the quota")

	t.Log("another namespace's durable Record keeps its own room")
	d := newRecord(other, "d", ring)
	createOwned(t, g, d)
	waitStreamReason(g, d, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)

	t.Log("the admin raises the tenant's quota on its Namespace")
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenant}}
	update(g, ns, func(ns *corev1.Namespace) {
		ns.Annotations = map[string]string{recbufv1alpha1.AnnotationNamespaceStreamMaxBytes: "24Mi"}
	})
	waitStreamReason(g, c, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)

	t.Log("a quota lowered later leaves the streams that are there as they are")
	update(g, ns, func(ns *corev1.Namespace) {
		ns.Annotations = map[string]string{recbufv1alpha1.AnnotationNamespaceStreamMaxBytes: "1Mi"}
	})
	e := newRecord(tenant, "e", ring)
	createOwned(t, g, e)
	waitStreamReason(g, e, recbufv1alpha1.ReasonStreamQuotaExceeded, recbufv1alpha1.ReasonStreamQuotaExceeded)
	g.Expect(meta.FindStatusCondition(e.Status.Conditions, recbufv1alpha1.ConditionStreamReady).Message).To(ContainSubstring(
		"the namespace's stream quota 1Mi (Namespace " + tenant + "'s annotation recbuf.dev/stream-max-bytes)"))
	for _, rec := range []*recbufv1alpha1.Record{a, b, c} {
		waitStreamReason(g, rec, recbufv1alpha1.ReasonStreamReady, recbufv1alpha1.ReasonProgressing)
	}

	t.Log("an annotation that is no quantity refuses new streams, and says why")
	update(g, ns, func(ns *corev1.Namespace) {
		ns.Annotations = map[string]string{recbufv1alpha1.AnnotationNamespaceStreamMaxBytes: "lots"}
	})
	f := newRecord(tenant, "f", ring)
	createOwned(t, g, f)
	waitStreamReason(g, f, recbufv1alpha1.ReasonStreamQuotaExceeded, recbufv1alpha1.ReasonStreamQuotaExceeded)
	g.Expect(meta.FindStatusCondition(f.Status.Conditions, recbufv1alpha1.ConditionStreamReady).Message).To(ContainSubstring(
		`annotation recbuf.dev/stream-max-bytes "lots" is not a non-negative quantity such as 256Mi`))
}

package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/event"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/report"
	"github.com/recbuf/recbuf/internal/statusagg"
)

// These tests are about operations: what a change of the manager's own
// settings does to the buffer pods (nothing), and the disruption budget.

func TestTheReportSettingsAreInTheRecordsConfigMapNotInItsPodTemplate(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "ring", ringSpec(8))
	create(t, g, rec)

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ring-recbuf"}}
	g.Eventually(func() error { return get(cm) }, timeout, poll).Should(Succeed())
	want := `{"interval":"1s","subjectPrefix":"` + testPrefix + `"}`
	g.Expect(cm.Data).To(Equal(map[string]string{report.SettingsKey: want}))
	g.Expect(cm.Labels).To(Equal(childLabels(rec)))
	g.Expect(cm.Annotations).NotTo(HaveKey(AnnotationSettingsChanged), "created, not changed")
	expectControlledBy(g, cm, rec)

	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ring-recbuf"}}
	g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())
	for _, arg := range d.Spec.Template.Spec.Containers[0].Args {
		g.Expect(arg).NotTo(Or(HavePrefix("--report-interval"), HavePrefix("--report-subject-prefix")),
			"the manager's report settings are not in the pod template")
	}

	// An edit is reverted, and stamped as a change: the pods may have read
	// the edited file meanwhile.
	update(g, cm, func(cm *corev1.ConfigMap) { cm.Data[report.SettingsKey] = `{"interval":"1h","subjectPrefix":"x"}` })
	g.Eventually(func(g Gomega) {
		g.Expect(get(cm)).To(Succeed())
		g.Expect(cm.Data[report.SettingsKey]).To(Equal(want))
		g.Expect(settingsChanged(cm)).To(BeTemporally("~", time.Now(), time.Minute))
	}, timeout, poll).Should(Succeed())
}

// TestAManagerSettingChangeLeavesThePodTemplateAlone is `helm upgrade
// --set reports.interval=4s --set reports.subjectPrefix=…` without a
// cluster: a manager runs a Record, stops, and a manager with other report
// settings takes over. The Record's ConfigMap gets the new settings, with
// the time of the change; its Deployment is not written at all, so no
// buffer pod restarts.
func TestAManagerSettingChangeLeavesThePodTemplateAlone(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "ring", ringSpec(8))
	rec.Labels = map[string]string{labelOwnManager: "true"}
	key := client.ObjectKeyFromObject(rec)

	before := testConfig
	counted := startManager(t, g, before)
	create(t, g, rec)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ring-recbuf"}}
	g.Eventually(func() error { return get(d) }, timeout, poll).Should(Succeed())
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ring-recbuf"}}
	g.Eventually(func() error { return get(cm) }, timeout, poll).Should(Succeed())
	g.Expect(cm.Data[report.SettingsKey]).To(Equal(settingsData(before)))
	counted.stop()
	g.Expect(get(d)).To(Succeed())
	was := d.DeepCopy()

	after := before
	after.ReportInterval = 4 * time.Second
	after.ReportSubjectPrefix = "other.stats"
	counted = startManager(t, g, after)
	g.Eventually(func(g Gomega) {
		g.Expect(get(cm)).To(Succeed())
		g.Expect(cm.Data[report.SettingsKey]).To(Equal(`{"interval":"4s","subjectPrefix":"other.stats"}`))
		g.Expect(settingsChanged(cm)).To(BeTemporally("~", time.Now(), time.Minute), "the change is stamped")
	}, timeout, poll).Should(Succeed())
	// Every pass of the new manager reconciles the Deployment too: once one
	// has finished, the Deployment is as the new settings want it.
	g.Eventually(func() int { return counted.get(key) }, timeout, poll).Should(BeNumerically(">=", 1))

	g.Expect(get(d)).To(Succeed())
	g.Expect(d.ResourceVersion).To(Equal(was.ResourceVersion), "the Deployment was not written")
	g.Expect(d.Generation).To(Equal(was.Generation))
	g.Expect(equality.Semantic.DeepEqual(d.Spec.Template, was.Spec.Template)).To(BeTrue(), "the pod template is unchanged")
}

func TestARecordOfSeveralReplicasHasADisruptionBudget(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "ring", ringSpec(8))
	rec.Spec.Replicas = ptr.To[int32](3)
	create(t, g, rec)

	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ring-recbuf"}}
	g.Eventually(func() error { return get(pdb) }, timeout, poll).Should(Succeed())
	g.Expect(pdb.Labels).To(Equal(childLabels(rec)))
	g.Expect(pdb.Spec.Selector).To(Equal(&metav1.LabelSelector{MatchLabels: selectorLabels(rec)}))
	g.Expect(pdb.Spec.MaxUnavailable).To(Equal(ptr.To(intstr.FromInt32(1))), "one pod at a time")
	g.Expect(pdb.Spec.MinAvailable).To(BeNil())
	g.Expect(pdb.Spec.UnhealthyPodEvictionPolicy).To(Equal(ptr.To(policyv1.AlwaysAllow)))
	expectControlledBy(g, pdb, rec)

	scale := func(replicas int32) {
		update(g, rec, func(r *recbufv1alpha1.Record) { r.Spec.Replicas = ptr.To(replicas) })
	}
	scale(1)
	g.Eventually(func() bool { return apierrors.IsNotFound(get(pdb)) }, timeout, poll).Should(BeTrue(),
		"no budget for one replica: it would block drains or protect nothing")
	scale(2)
	g.Eventually(func() error { return get(pdb) }, timeout, poll).Should(Succeed())
	scale(0)
	g.Eventually(func() bool { return apierrors.IsNotFound(get(pdb)) }, timeout, poll).Should(BeTrue(), "none for no replica")
}

func TestARecordOfOneReplicaHasNoDisruptionBudgetAndLeavesAForeignOneAlone(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	// Someone else's budget of the child's name: not the Record's, so
	// neither deleted nor taken over.
	foreign := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "door-recbuf"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: ptr.To(intstr.FromInt32(1))},
	}
	create(t, g, foreign)
	rec := newRecord(ns, "door", recbufv1alpha1.RecordSpec{Buffer: recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSingleLatest}})
	create(t, g, rec)
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.ObservedGeneration).To(Equal(rec.Generation))
		expectCondition(g, rec, recbufv1alpha1.ConditionStalled, metav1.ConditionFalse, recbufv1alpha1.ReasonProgressing)
	}, timeout, poll).Should(Succeed())
	g.Expect(get(foreign)).To(Succeed())
	g.Expect(foreign.OwnerReferences).To(BeEmpty())
}

// startManager runs a manager of the test's own with cfg, for the Records
// labelled labelOwnManager (which the suite's manager leaves alone), and
// with no reports. It is stopped by the returned handle's stop, or when
// the test ends; the handle counts its reconciles.
func startManager(t *testing.T, g Gomega, cfg Config) *ownManager {
	t.Helper()
	return startManagerWith(t, g, cfg, nil)
}

// startManagerWith is startManager with the reconciler adjusted by adjust
// (nil: as is) before it starts.
func startManagerWith(t *testing.T, g Gomega, cfg Config, adjust func(*RecordReconciler)) *ownManager {
	t.Helper()
	cacheOpts := CacheOptions()
	cacheOpts.ByObject[&recbufv1alpha1.Record{}] = cache.ByObject{Label: labels.SelectorFromSet(labels.Set{labelOwnManager: "true"})}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 k8s.Scheme(),
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	g.Expect(err).NotTo(HaveOccurred())
	r := &RecordReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorder("recbuf-manager"),
		Reports:   noReports{},
		Config:    cfg,
	}
	if adjust != nil {
		adjust(r)
	}
	m := &ownManager{reconcileCounter: &reconcileCounter{n: map[types.NamespacedName]int{}}}
	g.Expect(r.setupWithManager(mgr, m.wrap(r))).To(Succeed())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	m.stop = func() {
		if cancel != nil {
			cancel()
			cancel = nil
			g.Expect(<-done).To(Succeed(), "the test's manager")
		}
	}
	t.Cleanup(m.stop)
	return m
}

// ownManager is a manager started by startManager.
type ownManager struct {
	*reconcileCounter
	stop func()
}

// noReports is a status collector that hears nothing.
type noReports struct{}

func (noReports) Aggregate(types.NamespacedName, types.UID) statusagg.Aggregate {
	return statusagg.Aggregate{}
}
func (noReports) State() statusagg.State                                    { return statusagg.State{} }
func (noReports) Changes() <-chan event.TypedGenericEvent[statusagg.Change] { return noChanges }

// noChanges is never written to.
var noChanges = make(chan event.TypedGenericEvent[statusagg.Change])

func (noReports) StaleAfter() time.Duration { return testStaleAfter }

func (noReports) Admit(types.NamespacedName, statusagg.Identity) {}
func (noReports) Forget(types.NamespacedName)                    {}

package controllers

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
)

func quantity(s string) *resource.Quantity { return ptr.To(resource.MustParse(s)) }

func memoryLimit(s string) *corev1.ResourceRequirements {
	return &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(s)}}
}

// TestARecordThatDoesNotFitItsMemoryIsStalled is the insufficientMemory
// check: what the Record declares is held to the limit it would run with,
// its own or the manager's ceiling, and the message carries the numbers.
func TestARecordThatDoesNotFitItsMemoryIsStalled(t *testing.T) {
	ring := func(capacity int32, maxBytes string, res *corev1.ResourceRequirements) *recbufv1alpha1.Record {
		return testRecord(func(r *recbufv1alpha1.Record) {
			r.Spec.Buffer.Capacity = ptr.To(capacity)
			if maxBytes != "" {
				r.Spec.Buffer.MaxBytes = quantity(maxBytes)
			}
			r.Spec.Resources = res
		})
	}
	tests := []struct {
		name    string
		rec     *recbufv1alpha1.Record
		ceiling int64
		want    wantCond
	}{
		{
			name: "a ring whose maxBytes fits the default limit is not stalled",
			rec:  ring(1024, "64Mi", nil),
			want: wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonProgressing, ""},
		},
		{
			name: "a ring too large for the ceiling without maxBytes is not stalled: it gets the budget the ceiling leaves",
			rec:  ring(1024, "", nil),
			want: wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonProgressing, ""},
		},
		{
			name: "a maxBytes that needs more than the ceiling stalls",
			rec:  ring(1024, "900Mi", nil),
			want: wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonInsufficientMemory,
				"Deployment rec-recbuf left as it was: the buffer process needs up to 972.5Mi (900Mi of values, 32Mi for the process, 40Mi for the intake queue and 512Ki for the ring's slots) and so a memory limit of 1216Mi, above the manager's --buffer-memory-ceiling of 1Gi; " +
					"lower spec.buffer.maxBytes, spec.buffer.capacity or spec.maxMessageBytes, or set spec.resources.limits.memory"},
		},
		{
			name:    "the ceiling is the manager's",
			rec:     ring(1024, "900Mi", nil),
			ceiling: 2 << 30,
			want:    wantCond{metav1.ConditionFalse, recbufv1alpha1.ReasonProgressing, ""},
		},
		{
			name: "a maxBytes that needs more than the Record's own limit stalls",
			rec:  ring(1024, "200Mi", memoryLimit("256Mi")),
			want: wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonInsufficientMemory,
				"Deployment rec-recbuf left as it was: the buffer process needs up to 272.5Mi (200Mi of values, 32Mi for the process, 40Mi for the intake queue and 512Ki for the ring's slots) " +
					"and so a memory limit of 341Mi, above spec.resources.limits.memory of 256Mi; lower spec.buffer.maxBytes, spec.buffer.capacity or spec.maxMessageBytes, or raise spec.resources.limits.memory"},
		},
		{
			name: "a single-slot buffer whose own limit cannot hold the process stalls",
			rec: testRecord(func(r *recbufv1alpha1.Record) {
				r.Spec.Buffer = recbufv1alpha1.BufferSpec{Type: recbufv1alpha1.BufferTypeSingleLatest}
				r.Spec.Resources = memoryLimit("64Mi")
			}),
			want: wantCond{metav1.ConditionTrue, recbufv1alpha1.ReasonInsufficientMemory,
				"Deployment rec-recbuf left as it was: the buffer process needs up to 73Mi (1Mi of values, 32Mi for the process and 40Mi for the intake queue) " +
					"and so a memory limit of 92Mi, above spec.resources.limits.memory of 64Mi; lower spec.maxMessageBytes, or raise spec.resources.limits.memory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := inputs(func(in *statusInputs) {
				in.deployment = deployment(2)
				in.bufferMemoryCeiling = tt.ceiling
			})
			setStalledCondition(tt.rec, in)
			checkCondition(t, tt.rec, recbufv1alpha1.ConditionStalled, tt.want)
		})
	}
}

// bufferContainer reads the Record's Deployment and returns its buffer
// container.
func bufferContainer(g Gomega, ns, name string) (*appsv1.Deployment, corev1.Container) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-recbuf"}}
	g.Expect(get(d)).To(Succeed())
	g.Expect(d.Spec.Template.Spec.Containers).To(HaveLen(1))
	return d, d.Spec.Template.Spec.Containers[0]
}

func TestARecordThatCannotFitItsMemoryIsStalledAndNotRolledOut(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "big", withMaxBytes(ringSpec(1024), "900Mi"))
	create(t, g, rec)

	// A ring whose maxBytes needs more than the ceiling is Stalled, with
	// the numbers, and gets no Deployment.
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionStalled, metav1.ConditionTrue, recbufv1alpha1.ReasonInsufficientMemory)
		expectCondition(g, rec, recbufv1alpha1.ConditionReady, metav1.ConditionFalse, recbufv1alpha1.ReasonInsufficientMemory)
		c := meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionStalled)
		g.Expect(c.Message).To(ContainSubstring("needs up to 972.5Mi (900Mi of values"))
		g.Expect(c.Message).To(ContainSubstring("a memory limit of 1216Mi, above the manager's --buffer-memory-ceiling of 1Gi"))
	}, timeout, poll).Should(Succeed())
	expectEvent(t, g, rec, corev1.EventTypeWarning, recbufv1alpha1.ReasonInsufficientMemory)
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "big-recbuf"}}
	g.Expect(apierrors.IsNotFound(get(d))).To(BeTrue(), "a Deployment was created for a Record that does not fit")

	// A budget that fits rolls out pods sized for it.
	update(g, rec, func(rec *recbufv1alpha1.Record) { rec.Spec.Buffer.MaxBytes = quantity("64Mi") })
	g.Eventually(func(g Gomega) {
		_, c := bufferContainer(g, ns, "big")
		g.Expect(c.Args).To(ContainElement("--buffer-max-bytes=67108864"))
		g.Expect(c.Resources.Limits.Memory().String()).To(Equal("171Mi"))
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionStalled, metav1.ConditionFalse, recbufv1alpha1.ReasonProgressing)
	}, timeout, poll).Should(Succeed())

	// A change that does not fit is not rolled out: the running pods keep
	// their template.
	d, _ = bufferContainer(g, ns, "big")
	generation := d.Generation
	update(g, rec, func(rec *recbufv1alpha1.Record) { rec.Spec.Buffer.MaxBytes = quantity("900Mi") })
	g.Eventually(func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		g.Expect(rec.Status.ObservedGeneration).To(Equal(rec.Generation))
		expectCondition(g, rec, recbufv1alpha1.ConditionStalled, metav1.ConditionTrue, recbufv1alpha1.ReasonInsufficientMemory)
	}, timeout, poll).Should(Succeed())
	g.Consistently(func(g Gomega) {
		d, c := bufferContainer(g, ns, "big")
		g.Expect(d.Generation).To(Equal(generation))
		g.Expect(c.Args).To(ContainElement("--buffer-max-bytes=67108864"))
	}, 2*time.Second, poll).Should(Succeed())

	// A memory limit of the Record's own that holds it rolls out, with the
	// Record's resources.
	update(g, rec, func(rec *recbufv1alpha1.Record) { rec.Spec.Resources = memoryLimit("2Gi") })
	g.Eventually(func(g Gomega) {
		_, c := bufferContainer(g, ns, "big")
		g.Expect(c.Args).To(ContainElement("--buffer-max-bytes=943718400"))
		g.Expect(c.Resources.Limits.Memory().String()).To(Equal("2Gi"))
		g.Expect(c.Resources.Requests).To(BeEmpty(), "spec.resources replaces the defaults")
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionStalled, metav1.ConditionFalse, recbufv1alpha1.ReasonProgressing)
	}, timeout, poll).Should(Succeed())
}

// TestTheSampleTelemetryRecordFitsItsDefaultLimit applies the sample the
// demo and the e2e suite use: a ring of 1024 MiB-sized messages must get a
// budget and a limit that hold it, not the 1 GiB its count alone allows.
func TestTheSampleTelemetryRecordFitsItsDefaultLimit(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	raw, err := os.ReadFile(filepath.Join("..", "config", "samples", "recbuf_v1alpha1_record_telemetry.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	rec := &recbufv1alpha1.Record{}
	g.Expect(yaml.UnmarshalStrict(raw, rec)).To(Succeed())
	rec.Namespace = ns
	create(t, g, rec)
	g.Eventually(func(g Gomega) {
		_, c := bufferContainer(g, ns, "telemetry")
		g.Expect(c.Args).To(ContainElements("--capacity=1024", "--buffer-max-bytes=67108864"))
		g.Expect(c.Resources.Limits.Memory().String()).To(Equal("171Mi"))
		g.Expect(c.Resources.Requests.Memory().String()).To(Equal("121Mi"))
		g.Expect(get(rec)).To(Succeed())
		expectCondition(g, rec, recbufv1alpha1.ConditionStalled, metav1.ConditionFalse, recbufv1alpha1.ReasonProgressing)
	}, timeout, poll).Should(Succeed())
}

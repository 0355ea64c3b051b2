package kubectlplugin_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	recbufv1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// controlledBy makes obj controlled by owner, as the manager and the
// Deployment and ReplicaSet controllers make their children.
func controlledBy(obj, owner client.Object, kind, apiVersion string) {
	obj.SetOwnerReferences([]metav1.OwnerReference{{
		APIVersion: apiVersion, Kind: kind, Name: owner.GetName(), UID: owner.GetUID(),
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}})
}

// ownedDeployment creates the Record's Deployment, controlled by rec, and
// a ReplicaSet of it, and returns the ReplicaSet.
func ownedDeployment(t *testing.T, rec *recbufv1.Record) *appsv1.ReplicaSet {
	t.Helper()
	labels := map[string]string{"app": rec.ChildName()}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "buffer", Image: "recbuf/sidecar:test"}}}}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: rec.Namespace, Name: rec.ChildName()},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl}}
	controlledBy(d, rec, "Record", recbufv1.GroupVersion.String())
	if err := k8s.Create(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: rec.Namespace, Name: rec.ChildName() + "-6d4cf"},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl}}
	controlledBy(rs, d, "Deployment", "apps/v1")
	if err := k8s.Create(t.Context(), rs); err != nil {
		t.Fatal(err)
	}
	return rs
}

// readyPod creates the pod name with the labels of the Record's buffer
// pods, controlled by owner (nil: by nothing), and sets its status as a
// kubelet would: Running, and Ready when ready. envtest has no kubelet.
func readyPod(t *testing.T, rec *recbufv1.Record, name string, owner *appsv1.ReplicaSet, ready bool) {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: rec.Namespace, Name: name, Labels: map[string]string{"app": rec.ChildName()}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "buffer", Image: "recbuf/sidecar:test",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}
	if owner != nil {
		controlledBy(pod, owner, "ReplicaSet", "apps/v1")
	}
	if err := k8s.Create(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}}
	if err := k8s.Status().Update(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
}

func TestThePluginReachesOnlyPodsOwnedByTheRecordsDeployment(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	rec := record(t, ns, "guarded", recbufv1.BufferTypeSpmcRing, metav1.ConditionTrue, recbufv1.ReasonReady, "the buffer serves")
	service(t, ns, rec.ChildName())
	rs := ownedDeployment(t, rec)
	// Any pod creator of the namespace can make these: the Service's
	// labels, Ready, first by name.
	readyPod(t, rec, "aaa-rogue", nil, true)
	other := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "aab-other"},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "other"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x"}}}}}}
	g.Expect(k8s.Create(t.Context(), other)).To(Succeed())
	readyPod(t, rec, "aab-rogue-of-another-replicaset", other, true)

	t.Run("with no owned Ready pod, it says so and reaches none", func(t *testing.T) {
		readyPod(t, rec, "guarded-recbuf-6d4cf-x2x9q", rs, false)
		g := NewWithT(t)
		g.Eventually(func(g Gomega) {
			status, _, stderr := run(t, adminKubeconfig, "latest", "guarded", "-n", ns)
			g.Expect(status).To(Equal(1))
			g.Expect(stderr).To(ContainSubstring(fmt.Sprintf("no Ready pod of Deployment %s/%s", ns, rec.ChildName())))
			g.Expect(stderr).To(ContainSubstring("2 Ready pods with its labels are not its own and were ignored"))
			g.Expect(stderr).NotTo(ContainSubstring("port-forward"))
		}).WithTimeout(10 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	})
	t.Run("it forwards to the owned Ready pod, never to a pod with the labels alone", func(t *testing.T) {
		readyPod(t, rec, "guarded-recbuf-6d4cf-zzzzz", rs, true)
		g := NewWithT(t)
		g.Eventually(func(g Gomega) {
			// envtest has no kubelet: the port-forward fails, and its error
			// names the pod the plugin chose.
			_, _, stderr := run(t, adminKubeconfig, "latest", "guarded", "-n", ns)
			g.Expect(stderr).To(ContainSubstring(fmt.Sprintf("port-forward to pod %s/guarded-recbuf-6d4cf-zzzzz", ns)))
			g.Expect(strings.Contains(stderr, "rogue")).To(BeFalse(), "stderr names a rogue pod: %s", stderr)
		}).WithTimeout(10 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	})
	t.Run("--service-account requests a token of a ServiceAccount that exists, before it reaches a pod", func(t *testing.T) {
		g := NewWithT(t)
		status, _, stderr := run(t, adminKubeconfig, "latest", "guarded", "-n", ns, "--service-account", "nobody")
		g.Expect(status).To(Equal(1))
		g.Expect(stderr).To(ContainSubstring(`serviceaccounts/token "nobody" not found in namespace`))
		g.Expect(stderr).NotTo(ContainSubstring("port-forward"))

		g.Expect(k8s.Create(t.Context(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reader"}})).To(Succeed())
		g.Eventually(func(g Gomega) {
			_, _, stderr := run(t, adminKubeconfig, "latest", "guarded", "-n", ns, "--service-account", "reader")
			g.Expect(stderr).To(ContainSubstring(fmt.Sprintf("port-forward to pod %s/guarded-recbuf-6d4cf-zzzzz", ns)))
		}).WithTimeout(10 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
	})
}

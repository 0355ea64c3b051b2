package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	recbufv1 "github.com/recbuf/recbuf/api/v1alpha1"
)

// kubeFlags are the flags that choose the cluster, as kubectl's.
type kubeFlags struct {
	kubeconfig, context, namespace string
}

// kube is what a command needs of the cluster.
type kube struct {
	cfg       *rest.Config
	c         client.Client
	cs        kubernetes.Interface
	namespace string
}

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := recbufv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// connect loads the kubeconfig as kubectl does ($KUBECONFIG, else
// ~/.kube/config; --kubeconfig, --context and -n override) and returns
// clients for it.
func connect(f kubeFlags) (*kube, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: f.context}
	overrides.Context.Namespace = f.namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig namespace: %w", err)
	}
	cfg.UserAgent = "kubectl-recbuf"
	// The plugin makes a handful of requests; kubectl's own limits.
	cfg.QPS, cfg.Burst = 50, 100
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &kube{cfg: cfg, c: c, cs: cs, namespace: ns}, nil
}

// ErrNotReady is wrapped by the errors of a Record that cannot serve.
var ErrNotReady = errors.New("not ready")

// explain turns an API error into one a user can act on: what they may
// not do, and how to check it.
func (k *kube) explain(err error, verb, resource, name string) error {
	switch {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		if resource == "records" {
			if meta.IsNoMatchError(err) {
				return fmt.Errorf("this cluster has no Record API (records.recbuf.dev): is recbuf installed? %w", err)
			}
			return fmt.Errorf("record %q not found in namespace %q (kubectl get records -n %s lists them; -n chooses another): %w",
				name, k.namespace, k.namespace, err)
		}
		return fmt.Errorf("%s %q not found in namespace %q: %w", resource, name, k.namespace, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("you may not %s %s in namespace %q (check with: kubectl auth can-i %s %s -n %s): %w",
			verb, resource, k.namespace, verb, resource, k.namespace, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the API server did not accept your credentials (kubectl config view --minify shows which you use): %w", err)
	}
	return fmt.Errorf("%s %s %q: %w", verb, resource, name, err)
}

// record gets the Record name.
func (k *kube) record(ctx context.Context, name string) (*recbufv1.Record, error) {
	rec := &recbufv1.Record{}
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: k.namespace, Name: name}, rec); err != nil {
		return nil, k.explain(err, "get", "records", name)
	}
	return rec, nil
}

// readiness says why rec is not Ready ("" when it is): the Ready
// condition's reason and message, or that it has none yet.
func readiness(rec *recbufv1.Record) string {
	c := meta.FindStatusCondition(rec.Status.Conditions, recbufv1.ConditionReady)
	switch {
	case c == nil:
		return "it has no Ready condition yet: is the recbuf manager running?"
	case c.ObservedGeneration != 0 && c.ObservedGeneration < rec.Generation:
		return fmt.Sprintf("its status describes generation %d, not %d yet: the manager has not caught up", c.ObservedGeneration, rec.Generation)
	case c.Status != "True":
		return fmt.Sprintf("Ready is %s (%s): %s", c.Status, c.Reason, oneLine(c.Message))
	}
	return ""
}

// target is a pod and a port to forward to.
type target struct {
	pod  string
	port int32
}

// servicePod finds a Ready pod behind the Service svc and the container
// port its port portName (or number portNumber, when portName is "")
// sends to. It is for a Service of another party, such as a NATS server,
// to which the plugin sends no token; a Record's buffer pods are found by
// recordPod, which checks who owns them.
func (k *kube) servicePod(ctx context.Context, ns, svcName, portName string, portNumber int32) (target, error) {
	svc, sp, err := k.serviceAndPort(ctx, ns, svcName, portName, portNumber)
	if err != nil {
		return target{}, err
	}
	ready, all, err := k.readyPods(ctx, ns, svc)
	if err != nil {
		return target{}, err
	}
	if len(ready) == 0 {
		return target{}, fmt.Errorf("%w: service %s/%s has no Ready pod (of %d)", ErrNotReady, ns, svcName, all)
	}
	return pick(ns, svcName, ready, sp, portName, portNumber)
}

// serviceAndPort gets the Service svcName and its port portName (or
// number portNumber, when portName is "").
func (k *kube) serviceAndPort(ctx context.Context, ns, svcName, portName string, portNumber int32) (*corev1.Service, *corev1.ServicePort, error) {
	svc := &corev1.Service{}
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: svcName}, svc); err != nil {
		return nil, nil, k.explainIn(ns, err, "get", "services", svcName)
	}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if (portName != "" && p.Name == portName) || (portName == "" && p.Port == portNumber) {
			return svc, p, nil
		}
	}
	return nil, nil, fmt.Errorf("service %s/%s has no port %s", ns, svcName, portLabel(portName, portNumber))
}

// recordPod finds a Ready buffer pod of rec behind its Service and the
// container port of the Service's port portName. It reaches only a pod of
// the Record's own: one controlled by a ReplicaSet controlled by the
// Deployment rec.ChildName(), itself controlled by rec (UIDs, not names).
// A pod that merely carries the Service's labels, which anyone who may
// create pods in the namespace can set, is ignored: it would receive the
// consumer's token.
func (k *kube) recordPod(ctx context.Context, rec *recbufv1.Record, portName string) (target, error) {
	ns, svcName := rec.Namespace, rec.ChildName()
	svc, sp, err := k.serviceAndPort(ctx, ns, svcName, portName, 0)
	if err != nil {
		return target{}, err
	}
	d, err := k.deployment(ctx, rec)
	if err != nil {
		return target{}, err
	}
	if !metav1.IsControlledBy(d, rec) {
		return target{}, fmt.Errorf("deployment %s/%s is not controlled by record %s (its ownerReferences name no controller of UID %s): refusing to reach its pods",
			ns, d.Name, rec.Name, rec.UID)
	}
	ready, all, err := k.readyPods(ctx, ns, svc)
	if err != nil {
		return target{}, err
	}
	// The ReplicaSets asked about, by name: whether d controls each.
	owned := map[string]bool{}
	var mine []corev1.Pod
	for _, p := range ready {
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.Kind != "ReplicaSet" || ref.APIVersion != appsv1.SchemeGroupVersion.String() {
			continue
		}
		ok, seen := owned[ref.Name]
		if !seen {
			rs := &appsv1.ReplicaSet{}
			switch err := k.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: ref.Name}, rs); {
			case apierrors.IsNotFound(err):
			case err != nil:
				return target{}, k.explainIn(ns, err, "get", "replicasets", ref.Name)
			default:
				ok = rs.UID == ref.UID && metav1.IsControlledBy(rs, d)
			}
			owned[ref.Name] = ok
		}
		if ok {
			mine = append(mine, p)
		}
	}
	if len(mine) == 0 {
		ignored := ""
		if n := len(ready); n > 0 {
			ignored = fmt.Sprintf("; %d Ready pods with its labels are not its own and were ignored", n)
		}
		return target{}, fmt.Errorf("%w: no Ready pod of Deployment %s/%s (of %d pods with its labels)%s", ErrNotReady, ns, d.Name, all, ignored)
	}
	return pick(ns, svcName, mine, sp, portName, 0)
}

// readyPods lists the Ready pods that svc selects, and how many it
// selects in all.
func (k *kube) readyPods(ctx context.Context, ns string, svc *corev1.Service) ([]corev1.Pod, int, error) {
	if len(svc.Spec.Selector) == 0 {
		return nil, 0, fmt.Errorf("service %s/%s selects no pods (no selector): nothing to forward to", ns, svc.Name)
	}
	pods := &corev1.PodList{}
	if err := k.c.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		return nil, 0, k.explainIn(ns, err, "list", "pods", "")
	}
	all := len(pods.Items)
	return slices.DeleteFunc(pods.Items, func(p corev1.Pod) bool { return !podReady(&p) }), all, nil
}

// pick chooses among Ready pods: the same pod each time while it stays
// Ready, so that a stream resumes in the same numbering.
func pick(ns, svcName string, ready []corev1.Pod, sp *corev1.ServicePort, portName string, portNumber int32) (target, error) {
	slices.SortFunc(ready, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	pod := &ready[0]
	port, err := containerPort(pod, sp.TargetPort, sp.Port)
	if err != nil {
		return target{}, fmt.Errorf("service %s/%s port %s: %w", ns, svcName, portLabel(portName, portNumber), err)
	}
	return target{pod: pod.Name, port: port}, nil
}

func (k *kube) explainIn(ns string, err error, verb, resource, name string) error {
	kk := *k
	kk.namespace = ns
	return kk.explain(err, verb, resource, name)
}

func portLabel(name string, number int32) string {
	if name != "" {
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprint(number)
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// containerPort resolves a Service's targetPort in pod: a number as it is,
// a name by the pod's container ports; unset, the Service's port.
func containerPort(pod *corev1.Pod, tp intstr.IntOrString, servicePort int32) (int32, error) {
	switch {
	case tp.Type == intstr.Int && tp.IntVal != 0:
		return tp.IntVal, nil
	case tp.Type == intstr.String && tp.StrVal != "":
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == tp.StrVal {
					return p.ContainerPort, nil
				}
			}
		}
		return 0, fmt.Errorf("pod %s has no container port named %q", pod.Name, tp.StrVal)
	}
	return servicePort, nil
}

// deployment gets the Record's Deployment (its buffer pods' template).
func (k *kube) deployment(ctx context.Context, rec *recbufv1.Record) (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{}
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: rec.Namespace, Name: rec.ChildName()}, d); err != nil {
		return nil, k.explain(err, "get", "deployments", rec.ChildName())
	}
	return d, nil
}

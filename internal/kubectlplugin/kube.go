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
// sends to.
func (k *kube) servicePod(ctx context.Context, ns, svcName, portName string, portNumber int32) (target, error) {
	svc := &corev1.Service{}
	if err := k.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: svcName}, svc); err != nil {
		return target{}, k.explainIn(ns, err, "get", "services", svcName)
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if (portName != "" && p.Name == portName) || (portName == "" && p.Port == portNumber) {
			sp = p
		}
	}
	if sp == nil {
		return target{}, fmt.Errorf("service %s/%s has no port %s", ns, svcName, portLabel(portName, portNumber))
	}
	if len(svc.Spec.Selector) == 0 {
		return target{}, fmt.Errorf("service %s/%s selects no pods (no selector): nothing to forward to", ns, svcName)
	}
	pods := &corev1.PodList{}
	if err := k.c.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		return target{}, k.explainIn(ns, err, "list", "pods", "")
	}
	ready := slices.DeleteFunc(pods.Items, func(p corev1.Pod) bool { return !podReady(&p) })
	if len(ready) == 0 {
		return target{}, fmt.Errorf("%w: service %s/%s has no Ready pod (of %d)", ErrNotReady, ns, svcName, len(pods.Items))
	}
	// The same pod each time while it stays Ready: a stream then resumes
	// in the same numbering.
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

package controllers

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/sidecar"
	"github.com/recbuf/recbuf/pkg/client"
)

const authFlag = "--consumer-authentication=ServiceAccountToken"

// withAuthentication sets the Record's consumer authentication.
func withAuthentication(mode recbufv1alpha1.ConsumerAuthentication) func(*recbufv1alpha1.Record) {
	return func(r *recbufv1alpha1.Record) {
		r.Spec.Consumers = &recbufv1alpha1.ConsumersSpec{Authentication: mode}
	}
}

// expectNoConsumerIdentity checks that the Record's pods run without any
// token and that it has no ServiceAccount or binding.
func expectNoConsumerIdentity(g Gomega, rec *recbufv1alpha1.Record) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: rec.Namespace, Name: rec.ChildName()}}
	g.Expect(get(d)).To(Succeed())
	ps := d.Spec.Template.Spec
	g.Expect(ps.AutomountServiceAccountToken).To(Equal(ptr.To(false)), "the pods mount no token")
	g.Expect(ps.ServiceAccountName).To(BeEmpty())
	g.Expect(ps.DeprecatedServiceAccount).To(BeEmpty())
	g.Expect(ps.Containers[0].Args).NotTo(ContainElement(authFlag))
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: rec.Namespace, Name: rec.ChildName()}}
	g.Expect(apierrors.IsNotFound(get(sa))).To(BeTrue(), "no ServiceAccount %s", sa.Name)
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: authDelegatorBindingName(ctrlclient.ObjectKeyFromObject(rec))}}
	g.Expect(apierrors.IsNotFound(get(crb))).To(BeTrue(), "no ClusterRoleBinding %s", crb.Name)
}

// expectConsumerIdentity checks that the Record's pods run as its own
// ServiceAccount, bound to system:auth-delegator, mount its token and check
// their consumers'.
func expectConsumerIdentity(g Gomega, rec *recbufv1alpha1.Record) {
	g.Expect(get(rec)).To(Succeed())
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: rec.Namespace, Name: rec.ChildName()}}
	g.Expect(get(sa)).To(Succeed())
	g.Expect(metav1.IsControlledBy(sa, rec)).To(BeTrue(), "the Record owns its ServiceAccount")
	g.Expect(sa.AutomountServiceAccountToken).To(Equal(ptr.To(false)), "other pods of the account get no token by default")
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: authDelegatorBindingName(ctrlclient.ObjectKeyFromObject(rec))}}
	g.Expect(get(crb)).To(Succeed())
	g.Expect(crb.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"}))
	g.Expect(crb.Subjects).To(Equal([]rbacv1.Subject{{Kind: "ServiceAccount", Namespace: rec.Namespace, Name: rec.ChildName()}}))
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: rec.Namespace, Name: rec.ChildName()}}
	g.Expect(get(d)).To(Succeed())
	ps := d.Spec.Template.Spec
	g.Expect(ps.ServiceAccountName).To(Equal(rec.ChildName()))
	g.Expect(ps.AutomountServiceAccountToken).To(Equal(ptr.To(true)))
	g.Expect(ps.Containers[0].Args).To(ContainElement(authFlag))
}

func TestConsumerAuthenticationGivesTheBufferPodsAnIdentityOfTheirOwnOnlyThen(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "guarded", ringSpec(4))
	create(t, g, rec)
	g.Eventually(func(g Gomega) { expectNoConsumerIdentity(g, rec) }, timeout, poll).Should(Succeed(), "a Record without authentication")

	update(g, rec, withAuthentication(recbufv1alpha1.ConsumerAuthenticationServiceAccountToken))
	g.Eventually(func(g Gomega) { expectConsumerIdentity(g, rec) }, timeout, poll).Should(Succeed(), "authentication switched on")

	// Drift is reverted: a binding pointed at another role, and subjects
	// added to it.
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: authDelegatorBindingName(ctrlclient.ObjectKeyFromObject(rec))}}
	update(g, crb, func(c *rbacv1.ClusterRoleBinding) {
		c.Subjects = append(c.Subjects, rbacv1.Subject{Kind: "ServiceAccount", Namespace: ns, Name: "intruder"})
	})
	g.Eventually(func(g Gomega) { expectConsumerIdentity(g, rec) }, timeout, poll).Should(Succeed(), "an edited binding is reverted")

	update(g, rec, withAuthentication(recbufv1alpha1.ConsumerAuthenticationNone))
	g.Eventually(func(g Gomega) { expectNoConsumerIdentity(g, rec) }, timeout, poll).Should(Succeed(), "authentication switched off")

	update(g, rec, withAuthentication(recbufv1alpha1.ConsumerAuthenticationServiceAccountToken))
	g.Eventually(func(g Gomega) { expectConsumerIdentity(g, rec) }, timeout, poll).Should(Succeed(), "authentication switched on again")
	g.Expect(k8s.Delete(context.Background(), rec)).To(Succeed())
	g.Eventually(func() bool { return apierrors.IsNotFound(get(crb)) }, timeout, poll).Should(BeTrue(),
		"the binding, which no garbage collector deletes, goes with the Record")
}

func TestConsumerAuthenticationNeedsTheAdminsOptInWhereTheManagerRequiresIt(t *testing.T) {
	g := NewWithT(t)
	cfg := testConfig
	cfg.ConsumerAuthenticationOptIn = true
	startManagerWith(t, g, cfg, nil)
	ns := newNamespace(t)
	rec := newRecord(ns, "guarded", ringSpec(4))
	withAuthentication(recbufv1alpha1.ConsumerAuthenticationServiceAccountToken)(rec)
	createOwned(t, g, rec)
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: authDelegatorBindingName(ctrlclient.ObjectKeyFromObject(rec))}}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rec.ChildName()}}
	expectRefused := func(g Gomega) {
		g.Expect(get(rec)).To(Succeed())
		st := meta.FindStatusCondition(rec.Status.Conditions, recbufv1alpha1.ConditionStalled)
		g.Expect(st).NotTo(BeNil())
		g.Expect(st.Reason).To(Equal(recbufv1alpha1.ReasonConsumerAuthenticationNotAllowed))
		g.Expect(st.Message).To(HavePrefix("spec.consumers.authentication ServiceAccountToken needs the cluster admin's opt-in: Namespace " + ns +
			" has no annotation recbuf.dev/consumer-authentication=Allowed"))
		g.Expect(apierrors.IsNotFound(get(crb))).To(BeTrue(), "no review rights without the opt-in")
	}
	t.Log("a namespace the admin has not opted in gets no binding and no pods")
	g.Eventually(expectRefused, timeout, poll).Should(Succeed())
	g.Consistently(func() bool { return apierrors.IsNotFound(get(d)) }, time.Second, poll).Should(BeTrue(), "no buffer pod")

	t.Log("the admin opts the namespace in")
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	update(g, namespace, func(n *corev1.Namespace) {
		n.Annotations = map[string]string{recbufv1alpha1.AnnotationNamespaceConsumerAuthentication: recbufv1alpha1.ConsumerAuthenticationAllowed}
	})
	g.Eventually(func(g Gomega) { expectConsumerIdentity(g, rec) }, timeout, poll).Should(Succeed())

	t.Log("the admin withdraws the opt-in: the review rights go at once")
	update(g, namespace, func(n *corev1.Namespace) { n.Annotations = nil })
	g.Eventually(expectRefused, timeout, poll).Should(Succeed())
}

func TestABindingLeftBehindByAGoneRecordIsDeleted(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	// As if the Record was deleted while the manager was down.
	key := types.NamespacedName{Namespace: ns, Name: "gone"}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: authDelegatorBindingName(key), Labels: bindingLabels(key)},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: AuthDelegatorRole},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "gone-recbuf"}},
	}
	create(t, g, crb)
	// Someone else's binding with a name that looks like ours is left alone.
	other := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: authDelegatorBindingName(types.NamespacedName{Namespace: ns, Name: "theirs"})},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: AuthDelegatorRole},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "theirs"}},
	}
	create(t, g, other)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), other) })
	g.Eventually(func() bool { return apierrors.IsNotFound(get(crb)) }, timeout, poll).Should(BeTrue())
	g.Expect(get(other)).To(Succeed())
}

// TestTheBufferPodsIdentityIsEnoughToCheckConsumers runs the buffer process
// of the manager's Deployment with the token of the ServiceAccount the
// manager made for it, on envtest's API server: what the manager grants is
// what checking consumers takes. Consumers are ServiceAccounts too, with
// the Roles docs/security.md shows.
func TestTheBufferPodsIdentityIsEnoughToCheckConsumers(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	rec := newRecord(ns, "checked", ringSpec(4))
	withAuthentication(recbufv1alpha1.ConsumerAuthenticationServiceAccountToken)(rec)
	create(t, g, rec)
	g.Eventually(func(g Gomega) { expectConsumerIdentity(g, rec) }, timeout, poll).Should(Succeed())

	podToken := tokenOf(t, g, ns, rec.ChildName(), nil)
	buffer, _ := startSidecarOfWith(t, g, rec, func(c *sidecar.Config) {
		kube := rest.AnonymousClientConfig(restConfig)
		kube.BearerToken = podToken
		c.KubeConfig = kube
	})
	g.Expect(natsConn.Publish(rec.DefaultSubject(), []byte(`{"temp":1}`))).To(Succeed())
	g.Expect(natsConn.Flush()).To(Succeed())

	// The example Role of docs/security.md, bound to one consumer.
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "checked-consumer"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"recbuf.dev"}, Resources: []string{"records/consume"}, ResourceNames: []string{"checked"}, Verbs: []string{"get"}},
		},
	}
	create(t, g, role)
	create(t, g, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "checked-consumer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "consumer"}},
	})
	latestWith := func(token string) error {
		opts := []client.Option{}
		if token != "" {
			file := filepath.Join(t.TempDir(), "token")
			g.Expect(os.WriteFile(file, []byte(token), 0o600)).To(Succeed())
			opts = append(opts, client.WithBearerTokenFile(file))
		}
		c, err := client.New(buffer.RecordURL(rec.Name), opts...)
		g.Expect(err).NotTo(HaveOccurred())
		_, err = c.Latest(context.Background())
		return err
	}
	status := func(err error) int {
		var se *client.StatusError
		if errors.As(err, &se) {
			return se.StatusCode
		}
		return 0
	}
	consumer := tokenOf(t, g, ns, "consumer", []string{client.Audience(rec.Namespace, rec.Name)})
	stranger := tokenOf(t, g, ns, "stranger", []string{client.Audience(rec.Namespace, rec.Name)})
	g.Eventually(func() error { return latestWith(consumer) }, timeout, poll).Should(Succeed(), "a consumer with the Role reads the latest value")
	g.Expect(status(latestWith(stranger))).To(Equal(http.StatusForbidden), "a ServiceAccount without the Role")
	g.Expect(status(latestWith(""))).To(Equal(http.StatusUnauthorized), "no token")
}

// tokenOf creates the ServiceAccount ns/name unless it exists, and returns a
// token of it for audiences (nil: the API server's).
func tokenOf(t *testing.T, g Gomega, ns, name string, audiences []string) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := k8s.Create(context.Background(), sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating ServiceAccount %s: %v", name, err)
	}
	g.Expect(get(sa)).To(Succeed())
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: ptr.To[int64](3600)}}
	g.Expect(k8s.SubResource("token").Create(context.Background(), sa, tr)).To(Succeed())
	return tr.Status.Token
}

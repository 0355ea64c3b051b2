package consumerauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/recbuf/recbuf/internal/testutil/kubetest"

	"github.com/nats-io/nats.go"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/recbuf/recbuf/internal/audience"
	"github.com/recbuf/recbuf/internal/buffer"
	"github.com/recbuf/recbuf/internal/sidecar"
	"github.com/recbuf/recbuf/internal/sidecar/consumerauth"
)

// The tests run one real kube-apiserver (envtest: RBAC authorization, a
// ServiceAccount token issuer) and buffer processes in process that ask it
// who their consumers are and what they may do.
var (
	// admin is the API server's administrator.
	admin *kubernetes.Clientset
	// adminConfig reaches the API server as admin.
	adminConfig *rest.Config
)

// namespace holds the Records and ServiceAccounts of the tests.
const namespace = "tokenauth"

func TestMain(m *testing.M) {
	assets, err := kubetest.Assets()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// A bare API server: these tests need ServiceAccounts and reviews, no CRD.
	os.Exit(kubetest.Main(m, &envtest.Environment{BinaryAssetsDirectory: assets}, setup))
}

// setup makes the admin client and the tests' namespace.
func setup(_ *envtest.Environment, cfg *rest.Config) (func() error, error) {
	adminConfig = cfg
	var err error
	if admin, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := admin.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
	}
	return nil, nil
}

// serviceAccount creates the ServiceAccount name in the tests' namespace
// with the rules given to it by a Role of its own (none: no Role).
func serviceAccount(t *testing.T, name string, rules ...rbacv1.PolicyRule) {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := admin.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ServiceAccount %s: %v", name, err)
	}
	// Deleted afterwards, so that the test can run again (-count) on the
	// same API server.
	t.Cleanup(func() {
		_ = admin.CoreV1().ServiceAccounts(namespace).Delete(ctx, name, metav1.DeleteOptions{})
		_ = admin.RbacV1().Roles(namespace).Delete(ctx, name, metav1.DeleteOptions{})
		_ = admin.RbacV1().RoleBindings(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	})
	if len(rules) == 0 {
		return
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}
	if _, err := admin.RbacV1().Roles(namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating Role %s: %v", name, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: name}},
	}
	if _, err := admin.RbacV1().RoleBindings(namespace).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating RoleBinding %s: %v", name, err)
	}
}

// token requests a token of the ServiceAccount name for audiences (none:
// the API server's own).
func token(t *testing.T, name string, audiences ...string) string {
	t.Helper()
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: audiences, ExpirationSeconds: ptr.To[int64](3600),
	}}
	got, err := admin.CoreV1().ServiceAccounts(namespace).CreateToken(context.Background(), name, tr, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token of %s: %v", name, err)
	}
	return got.Status.Token
}

// bothRecords are the audiences of the two Records of startBuffer's
// process: a token for both may list them.
var bothRecords = []string{audience.Of(namespace, "telemetry"), audience.Of(namespace, "commands")}

// consume and take are the rules a consumer's Role grants: get on
// records/consume to read, create on records/take to take.
var (
	consume = rbacv1.PolicyRule{APIGroups: []string{"recbuf.dev"}, Resources: []string{"records/consume"}, Verbs: []string{"get"}}
	take    = rbacv1.PolicyRule{APIGroups: []string{"recbuf.dev"}, Resources: []string{"records/take"}, Verbs: []string{"create"}}
)

// bufferIdentity creates the buffer process's own ServiceAccount, bound
// to system:auth-delegator as the manager binds a Record's, and returns a
// configuration that reaches the API server as it: what the process may
// do is exactly what a buffer pod may do.
func bufferIdentity(t *testing.T, name string) *rest.Config {
	t.Helper()
	serviceAccount(t, name)
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: namespace + ":" + name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:auth-delegator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: name}},
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(context.Background(), crb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating ClusterRoleBinding: %v", err)
	}
	t.Cleanup(func() {
		_ = admin.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
	})
	cfg := rest.AnonymousClientConfig(adminConfig)
	cfg.BearerToken = token(t, name)
	return cfg
}

// startBuffer runs a buffer process that asks consumers for tokens, with
// a ring "telemetry" and a mailbox "commands", authorized as Records of
// the tests' namespace, and reaching the API server with kube.
func startBuffer(t *testing.T, kube *rest.Config) (*sidecar.Sidecar, *nats.Conn) {
	t.Helper()
	cfg := sidecar.Config{
		Pod: "pod-0",
		Records: []sidecar.RecordConfig{
			{Namespace: namespace, Name: "telemetry", Type: buffer.TypeSpmcRing, Capacity: 16, Subject: "in.telemetry"},
			{Namespace: namespace, Name: "commands", Type: buffer.TypeMailbox, Subject: "in.commands"},
		},
		EmbeddedNATS:           "127.0.0.1:0",
		HTTPAddr:               "127.0.0.1:0",
		MetricsAddr:            "127.0.0.1:0",
		ReportInterval:         time.Hour,
		ShutdownGrace:          5 * time.Second,
		ConsumerAuthentication: consumerauth.ModeServiceAccountToken,
		KubeConfig:             kube,
		Logger:                 slog.New(slog.DiscardHandler),
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := sidecar.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("Wait: %v", err)
		}
	})
	nc, err := nats.Connect(s.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return s, nc
}

// answer is what the consumer API answered.
type answer struct {
	status        int
	error         string
	authenticate  string
	contentType   string
	retryAfterSet bool
}

// request sends method to the buffer's path with the bearer token (none
// when empty) and reads the answer; a stream's answer is read up to its
// header only.
func request(t *testing.T, s *sidecar.Sidecar, method, path, bearer string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+s.HTTPAddr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	a := answer{
		status:        resp.StatusCode,
		authenticate:  resp.Header.Get("WWW-Authenticate"),
		contentType:   resp.Header.Get("Content-Type"),
		retryAfterSet: resp.Header.Get("Retry-After") != "",
	}
	if strings.HasPrefix(a.contentType, "text/event-stream") {
		return a
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("%s %s: %d with a body that is not the API's JSON error: %q", method, path, resp.StatusCode, body)
		}
		a.error = e.Error
	}
	return a
}

func publish(t *testing.T, nc *nats.Conn, subject, payload string) {
	t.Helper()
	if err := nc.Publish(subject, []byte(payload)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestConsumersNeedAServiceAccountTokenWithTheVerbOfWhatTheyDo(t *testing.T) {
	s, nc := startBuffer(t, bufferIdentity(t, "buffer"))
	serviceAccount(t, "stranger")
	serviceAccount(t, "reader", consume)
	serviceAccount(t, "taker", take)
	serviceAccount(t, "both", consume, take)
	// Only telemetry: the Role names the Record.
	serviceAccount(t, "telemetry-reader", rbacv1.PolicyRule{
		APIGroups: []string{"recbuf.dev"}, Resources: []string{"records/consume"}, Verbs: []string{"get"}, ResourceNames: []string{"telemetry"},
	})
	// The verb of the other subresource does not count.
	serviceAccount(t, "wrong-verb", rbacv1.PolicyRule{
		APIGroups: []string{"recbuf.dev"}, Resources: []string{"records/consume", "records/take"}, Verbs: []string{"list", "update"},
	})
	publish(t, nc, "in.telemetry", `{"v":1}`)

	tokens := map[string]string{
		"none":                      "",
		"garbage":                   "not-a-token",
		"reader for the API server": token(t, "reader"),
		"stranger":                  token(t, "stranger", bothRecords...),
		"stranger for nope":         token(t, "stranger", audience.Of(namespace, "nope")),
		"reader":                    token(t, "reader", bothRecords...),
		"taker":                     token(t, "taker", bothRecords...),
		"both":                      token(t, "both", bothRecords...),
		"telemetry-reader":          token(t, "telemetry-reader", bothRecords...),
		"wrong-verb":                token(t, "wrong-verb", bothRecords...),
	}
	tests := []struct {
		name, method, path, token string
		want                      int
	}{
		{"a request without a token is unauthenticated", "GET", "/v1/records/telemetry/latest", "none", 401},
		{"a token that is no token is unauthenticated", "GET", "/v1/records/telemetry/latest", "garbage", 401},
		{"a token meant for the API server is unauthenticated", "GET", "/v1/records/telemetry/latest", "reader for the API server", 401},
		{"a ServiceAccount without the verb may not read the latest value", "GET", "/v1/records/telemetry/latest", "stranger", 403},
		{"a ServiceAccount without the verb may not stream", "GET", "/v1/records/telemetry/events", "stranger", 403},
		{"a ServiceAccount without the verb may not list the records", "GET", "/v1/records", "stranger", 403},
		{"a ServiceAccount with other verbs on the subresources may not read", "GET", "/v1/records/telemetry/latest", "wrong-verb", 403},
		{"a ServiceAccount with other verbs on the subresources may not take", "POST", "/v1/records/commands/take?timeout=0", "wrong-verb", 403},
		{"a reader reads the latest value", "GET", "/v1/records/telemetry/latest", "reader", 200},
		{"a reader streams", "GET", "/v1/records/telemetry/events", "reader", 200},
		{"a reader reads a record's info", "GET", "/v1/records/telemetry", "reader", 200},
		{"a reader lists the records", "GET", "/v1/records", "reader", 200},
		{"a reader may not take", "POST", "/v1/records/commands/take?timeout=0", "reader", 403},
		{"a taker takes", "POST", "/v1/records/commands/take?timeout=0", "taker", 204},
		{"a taker may not read", "GET", "/v1/records/commands/latest", "taker", 403},
		{"a reader may not stream a Mailbox, which takes each value it sends", "GET", "/v1/records/commands/events", "reader", 403},
		{"a taker streams a Mailbox", "GET", "/v1/records/commands/events", "taker", 200},
		{"a reader and taker takes", "POST", "/v1/records/commands/take?timeout=0", "both", 204},
		{"a reader of one Record reads it", "GET", "/v1/records/telemetry/latest", "telemetry-reader", 200},
		{"a reader of one Record may not read another", "GET", "/v1/records/commands/latest", "telemetry-reader", 403},
		{"a reader of one Record may not list them all", "GET", "/v1/records", "telemetry-reader", 403},
		{"an unauthenticated request for an unknown record learns nothing of it", "GET", "/v1/records/nope/latest", "none", 401},
		{"an unauthorized request for an unknown record learns nothing of it", "GET", "/v1/records/nope/latest", "stranger for nope", 403},
		{"a request for an unknown record with a token for others learns nothing of it", "GET", "/v1/records/nope/latest", "stranger", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Twice: the second answer may come from the cache, and must be
			// the same.
			for i := range 2 {
				a := request(t, s, tt.method, tt.path, tokens[tt.token])
				if a.status != tt.want {
					t.Fatalf("request %d: %s %s with the token of %s: got %d (%q), want %d", i+1, tt.method, tt.path, tt.token, a.status, a.error, tt.want)
				}
				if tt.want == 401 && a.authenticate != `Bearer realm="recbuf"` {
					t.Errorf("401 with WWW-Authenticate %q, want %q", a.authenticate, `Bearer realm="recbuf"`)
				}
				if tt.want >= 400 && a.error == "" {
					t.Errorf("%d without a reason in the JSON error body", a.status)
				}
			}
		})
	}

	t.Run("a taker takes the pending value", func(t *testing.T) {
		publish(t, nc, "in.commands", `{"cmd":"open"}`)
		deadline := time.Now().Add(20 * time.Second)
		for {
			a := request(t, s, "POST", "/v1/records/commands/take?timeout=1s", tokens["taker"])
			if a.status == 200 {
				break
			}
			if a.status != 204 || time.Now().After(deadline) {
				t.Fatalf("take: got %d (%q), want 200", a.status, a.error)
			}
		}
	})
	t.Run("the health and metrics endpoints ask for no token", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
			resp, err := http.Get("http://" + s.MetricsAddr() + p)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET %s: got %d, want 200", p, resp.StatusCode)
			}
		}
	})
}

func TestATokenIsGoodOnlyForTheRecordsOfItsAudience(t *testing.T) {
	s, nc := startBuffer(t, bufferIdentity(t, "buffer-audience"))
	// May read and take every Record of the namespace: only the audience
	// of its token decides which Record it reaches.
	serviceAccount(t, "everything", consume, take)
	publish(t, nc, "in.telemetry", `{"v":1}`)

	tests := []struct {
		name      string
		audiences []string
		path      string
		want      int
	}{
		{"a token for Record telemetry reads telemetry", []string{audience.Of(namespace, "telemetry")}, "/v1/records/telemetry/latest", 200},
		{"a token for Record telemetry is refused by Record commands", []string{audience.Of(namespace, "telemetry")}, "/v1/records/commands/latest", 401},
		{"a token for Record telemetry may not list, which reads commands too", []string{audience.Of(namespace, "telemetry")}, "/v1/records", 401},
		{"a token for Record commands is refused by Record telemetry", []string{audience.Of(namespace, "commands")}, "/v1/records/telemetry/latest", 401},
		{"a token for a Record of the same name in another namespace is refused", []string{audience.Of("elsewhere", "telemetry")}, "/v1/records/telemetry/latest", 401},
		{"a token with the audience recbuf.dev, once shared by every Record, is refused", []string{audience.Prefix}, "/v1/records/telemetry/latest", 401},
		{"a token for both Records lists them", bothRecords, "/v1/records", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := request(t, s, "GET", tt.path, token(t, "everything", tt.audiences...))
			if a.status != tt.want {
				t.Fatalf("GET %s with a token for %v: got %d (%q), want %d", tt.path, tt.audiences, a.status, a.error, tt.want)
			}
			if tt.want == 401 && !strings.Contains(a.error, "recbuf.dev/"+namespace+"/") {
				t.Errorf("401 %q does not name the audience to ask for", a.error)
			}
		})
	}
}

func TestAnAPIServerThatCannotBeReachedIsUnavailableNotUnauthenticated(t *testing.T) {
	// A port that nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	kube := rest.CopyConfig(adminConfig)
	kube.Host = "https://" + addr
	kube.Timeout = 2 * time.Second
	s, _ := startBuffer(t, kube)
	serviceAccount(t, "reader-while-down", consume)

	a := request(t, s, "GET", "/v1/records/telemetry/latest", token(t, "reader-while-down", bothRecords...))
	if a.status != 503 || !a.retryAfterSet || a.error == "" {
		t.Fatalf("got %d (%q, Retry-After set: %v), want 503 with a reason and Retry-After", a.status, a.error, a.retryAfterSet)
	}
	if a := request(t, s, "GET", "/v1/records/telemetry/latest", ""); a.status != 401 {
		t.Errorf("without a token: got %d, want 401 (no review needed to know)", a.status)
	}
	if got := metric(t, s, `recbuf_consumer_auth_total{result="error"}`); got < 1 {
		t.Errorf("recbuf_consumer_auth_total{result=\"error\"} = %v, want at least 1", got)
	}
}

// metric returns the value of the sample line that starts with prefix in
// the process's /metrics, or -1.
func metric(t *testing.T, s *sidecar.Sidecar, prefix string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}

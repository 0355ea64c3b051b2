package consumerauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/recbuf/recbuf/internal/audience"
	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
)

// Modes of --consumer-authentication, the values of the Record's
// spec.consumers.authentication.
const (
	ModeNone                = "None"
	ModeServiceAccountToken = "ServiceAccountToken"
)

// Audience is the audience a consumer's token must carry to reach the
// Record namespace/name (pkg/client.Audience, the same function):
// recbuf.dev/NAMESPACE/NAME. A token meant for the API server, for another
// service or for another Record is refused, so that neither a service that
// receives tokens of its own nor a Record's buffer pod (or a pod posing as
// one) can replay them against another Record. The audience recbuf.dev
// that every Record shared before is refused too: accepting it, even for a
// deprecation window, would keep open what the per-Record audience closes.
func Audience(namespace, name string) string { return audience.Of(namespace, name) }

// What a SubjectAccessReview asks about: the Record, in API group Group,
// resource Resource, with the subresource and verb of the operation.
const (
	Group       = "recbuf.dev"
	Resource    = "records"
	ConsumeSub  = "consume"
	ConsumeVerb = "get"
	TakeSub     = "take"
	TakeVerb    = "create"
)

// Defaults of Config: an answer that lets a request in counts for a
// minute (as kube-rbac-proxy's default of two minutes, shorter), one that
// does not for ten seconds, so that a consumer whose Role was just granted
// waits little. 4096 tokens and operations at once is far more than the
// consumers of one Record.
const (
	DefaultAllowTTL   = time.Minute
	DefaultDenyTTL    = 10 * time.Second
	DefaultMaxEntries = 4096
	// DefaultTimeout bounds each review.
	DefaultTimeout = 10 * time.Second
)

// Reviewer asks the API server about one token: who it is, then what it
// may do. ReviewToken returns nil user info for a token the API server
// does not authenticate for audience (the token may carry others too);
// Access reports whether the user
// may do what attrs say. An error is a failure to ask, not a refusal.
type Reviewer interface {
	ReviewToken(ctx context.Context, token, audience string) (*authenticationv1.UserInfo, error)
	Access(ctx context.Context, user *authenticationv1.UserInfo, attrs authorizationv1.ResourceAttributes) (allowed bool, reason string, err error)
}

// Config configures an Authorizer.
type Config struct {
	// Namespace is the namespace of the Records asked about.
	Namespace string
	// Reviewer asks the API server; NewReviewer makes the real one.
	Reviewer Reviewer
	// AllowTTL and DenyTTL are how long an answer is cached (<= 0:
	// DefaultAllowTTL, DefaultDenyTTL); MaxEntries bounds the cache
	// (<= 0: DefaultMaxEntries).
	AllowTTL, DenyTTL time.Duration
	MaxEntries        int
	// Timeout bounds each review (<= 0: DefaultTimeout).
	Timeout time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Authorizer is the consumer API's consumerapi.Authorizer for
// ServiceAccount tokens. Create it with New.
type Authorizer struct {
	cfg Config

	mu    sync.Mutex
	cache map[cacheKey]decision

	allowed, unauthenticated, forbidden, failed atomic.Uint64
}

// cacheKey is what an answer is about: the SHA-256 of the token, never the
// token itself, and the Record and operation asked for.
type cacheKey struct {
	token  [sha256.Size]byte
	record string
	op     consumerapi.Operation
}

// decision is a cached answer: nil err lets the request in.
type decision struct {
	err     error
	expires time.Time
}

// Stats counts the Authorizer's answers, cached or not, by result.
type Stats struct {
	Allowed, Unauthenticated, Forbidden uint64
	// Errors counts the requests answered 503 because the API server
	// could not be asked; these are never cached.
	Errors uint64
}

// New returns an Authorizer.
func New(cfg Config) *Authorizer {
	if cfg.AllowTTL <= 0 {
		cfg.AllowTTL = DefaultAllowTTL
	}
	if cfg.DenyTTL <= 0 {
		cfg.DenyTTL = DefaultDenyTTL
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Authorizer{cfg: cfg, cache: map[cacheKey]decision{}}
}

// Stats returns the counts of answers so far.
func (a *Authorizer) Stats() Stats {
	return Stats{
		Allowed: a.allowed.Load(), Unauthenticated: a.unauthenticated.Load(),
		Forbidden: a.forbidden.Load(), Errors: a.failed.Load(),
	}
}

// Authorize lets the bearer of token do op on the Record named record, or
// says why not: an error wrapping consumerapi.ErrUnauthenticated or
// consumerapi.ErrForbidden, or a *ReviewError when the API server could
// not be asked. No message carries the token.
func (a *Authorizer) Authorize(ctx context.Context, token, record string, op consumerapi.Operation) error {
	err := a.authorize(ctx, token, record, op)
	var rev *ReviewError
	switch {
	case err == nil:
		a.allowed.Add(1)
	case errors.Is(err, consumerapi.ErrUnauthenticated):
		a.unauthenticated.Add(1)
	case errors.Is(err, consumerapi.ErrForbidden):
		a.forbidden.Add(1)
	case errors.As(err, &rev):
		a.failed.Add(1)
	}
	return err
}

func (a *Authorizer) authorize(ctx context.Context, token, record string, op consumerapi.Operation) error {
	if token == "" {
		return fmt.Errorf("%w: no bearer token: send a ServiceAccount token with audience %s", consumerapi.ErrUnauthenticated, Audience(a.cfg.Namespace, record))
	}
	key := cacheKey{token: sha256.Sum256([]byte(token)), record: record, op: op}
	if d, ok := a.cached(key); ok {
		return d
	}
	err := a.review(ctx, token, record, op)
	var rev *ReviewError
	if !errors.As(err, &rev) {
		a.remember(key, err)
	}
	return err
}

// review asks the API server, with a TokenReview and then a
// SubjectAccessReview.
func (a *Authorizer) review(ctx context.Context, token, record string, op consumerapi.Operation) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	aud := Audience(a.cfg.Namespace, record)
	user, err := a.cfg.Reviewer.ReviewToken(ctx, token, aud)
	if err != nil {
		return &ReviewError{Review: "TokenReview", Err: err}
	}
	if user == nil {
		return fmt.Errorf("%w: the token is not a valid ServiceAccount token with audience %s (each Record has its own)", consumerapi.ErrUnauthenticated, aud)
	}
	attrs := Attributes(a.cfg.Namespace, record, op)
	allowed, reason, err := a.cfg.Reviewer.Access(ctx, user, attrs)
	if err != nil {
		return &ReviewError{Review: "SubjectAccessReview", Err: err}
	}
	if !allowed {
		msg := fmt.Sprintf("%s may not %s %s/%s %q in namespace %s", user.Username, attrs.Verb, attrs.Resource, attrs.Subresource, attrs.Name, attrs.Namespace)
		if reason != "" {
			msg += ": " + reason
		}
		return fmt.Errorf("%w: %s", consumerapi.ErrForbidden, msg)
	}
	return nil
}

// Attributes are what a SubjectAccessReview asks for op on the Record
// namespace/name.
func Attributes(namespace, name string, op consumerapi.Operation) authorizationv1.ResourceAttributes {
	attrs := authorizationv1.ResourceAttributes{
		Namespace: namespace, Name: name, Group: Group, Resource: Resource,
		Subresource: ConsumeSub, Verb: ConsumeVerb,
	}
	if op == consumerapi.OpTake {
		attrs.Subresource, attrs.Verb = TakeSub, TakeVerb
	}
	return attrs
}

func (a *Authorizer) cached(key cacheKey) (error, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	d, ok := a.cache[key]
	if !ok {
		return nil, false
	}
	if !a.cfg.Now().Before(d.expires) {
		delete(a.cache, key)
		return nil, false
	}
	return d.err, true
}

// remember caches an answer. A full cache first drops what has expired,
// then, if still full, any one entry: what a flood of made-up tokens costs
// is bounded by MaxEntries, and the price is a review more.
func (a *Authorizer) remember(key cacheKey, err error) {
	now := a.cfg.Now()
	ttl := a.cfg.AllowTTL
	if err != nil {
		ttl = a.cfg.DenyTTL
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= a.cfg.MaxEntries {
		for k, d := range a.cache {
			if !now.Before(d.expires) {
				delete(a.cache, k)
			}
		}
		for k := range a.cache {
			if len(a.cache) < a.cfg.MaxEntries {
				break
			}
			delete(a.cache, k)
		}
	}
	a.cache[key] = decision{err: err, expires: now.Add(ttl)}
}

// Len is the number of cached answers.
func (a *Authorizer) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.cache)
}

// ReviewError is a review the API server could not be asked, or did not
// answer: the consumer API answers 503, never 401 or 403, and it is not
// cached.
type ReviewError struct {
	// Review is TokenReview or SubjectAccessReview.
	Review string
	Err    error
}

func (e *ReviewError) Error() string {
	return fmt.Sprintf("the API server could not be asked (%s): %v", e.Review, e.Err)
}

func (e *ReviewError) Unwrap() error { return e.Err }

// NewReviewer returns the Reviewer that asks the API server that cfg
// reaches, as the identity cfg carries (in a buffer pod, its
// ServiceAccount, bound to system:auth-delegator). It posts the two
// reviews as JSON over client-go's transport (TLS, the token file re-read
// as the kubelet rotates it) rather than through client-go's typed
// clients, whose scheme registers every Kubernetes API type: that would
// double the buffer process's binary and add to every buffer pod's
// memory, for two requests.
func NewReviewer(cfg *rest.Config) (Reviewer, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("API server client: %w", err)
	}
	base, err := url.Parse(cfg.Host)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("API server URL %q: want https://host:port", cfg.Host)
	}
	if base.Scheme == "" {
		base.Scheme = "https"
	}
	base.Path = strings.TrimSuffix(base.Path, "/") + "/apis"
	return &apiReviewer{hc: hc, base: base.String()}, nil
}

type apiReviewer struct {
	hc   *http.Client
	base string
}

// maxReviewBytes bounds the answer read from the API server: a review
// answer is a few hundred bytes.
const maxReviewBytes = 1 << 20

// post creates the review in (group/version/resource under /apis) and
// decodes the API server's answer into out.
func (r *apiReviewer) post(ctx context.Context, resource string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/"+resource, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReviewBytes))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		var st metav1.Status
		if json.Unmarshal(data, &st) == nil && st.Message != "" {
			return fmt.Errorf("%s: %d %s", resource, resp.StatusCode, st.Message)
		}
		return fmt.Errorf("%s: %d", resource, resp.StatusCode)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: %w", resource, err)
	}
	return nil
}

func (r *apiReviewer) ReviewToken(ctx context.Context, token, audience string) (*authenticationv1.UserInfo, error) {
	in := &authenticationv1.TokenReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview"},
		Spec:     authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{audience}},
	}
	var tr authenticationv1.TokenReview
	if err := r.post(ctx, "authentication.k8s.io/v1/tokenreviews", in, &tr); err != nil {
		return nil, err
	}
	// An API server that ignores spec.audiences (one without
	// audience-aware authenticators) answers with none: refuse the token
	// rather than take one meant for someone else.
	if !tr.Status.Authenticated || !slices.Contains(tr.Status.Audiences, audience) {
		return nil, nil
	}
	return &tr.Status.User, nil
}

func (r *apiReviewer) Access(ctx context.Context, user *authenticationv1.UserInfo, attrs authorizationv1.ResourceAttributes) (bool, string, error) {
	extra := make(map[string]authorizationv1.ExtraValue, len(user.Extra))
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	in := &authorizationv1.SubjectAccessReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SubjectAccessReview"},
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra, ResourceAttributes: &attrs,
		},
	}
	var sar authorizationv1.SubjectAccessReview
	if err := r.post(ctx, "authorization.k8s.io/v1/subjectaccessreviews", in, &sar); err != nil {
		return false, "", err
	}
	// An evaluation error (RBAC met a binding to a missing role) with no
	// allow is still a refusal: Reason says why.
	return sar.Status.Allowed && !sar.Status.Denied, sar.Status.Reason, nil
}

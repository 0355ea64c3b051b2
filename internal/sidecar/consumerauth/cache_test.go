package consumerauth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/recbuf/recbuf/internal/sidecar/consumerapi"
	"github.com/recbuf/recbuf/internal/sidecar/consumerauth"
)

// countingReviewer answers as a tiny cluster would: the token "reader"
// may consume, the token "taker" may take, any other token is not one;
// failing makes every review fail. It counts the reviews asked.
type countingReviewer struct {
	mu              sync.Mutex
	tokens, access  int
	failing         bool
	lastAccessAttrs authorizationv1.ResourceAttributes
	lastAudience    string
}

func (r *countingReviewer) ReviewToken(_ context.Context, token, audience string) (*authenticationv1.UserInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tokens++
	r.lastAudience = audience
	if r.failing {
		return nil, errors.New("connection refused")
	}
	if token != "reader" && token != "taker" {
		return nil, nil
	}
	return &authenticationv1.UserInfo{Username: "system:serviceaccount:ns:" + token}, nil
}

func (r *countingReviewer) Access(_ context.Context, user *authenticationv1.UserInfo, attrs authorizationv1.ResourceAttributes) (bool, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.access++
	r.lastAccessAttrs = attrs
	if r.failing {
		return false, "", errors.New("connection refused")
	}
	switch user.Username {
	case "system:serviceaccount:ns:reader":
		return attrs.Subresource == "consume" && attrs.Verb == "get", "", nil
	case "system:serviceaccount:ns:taker":
		return attrs.Subresource == "take" && attrs.Verb == "create", "", nil
	}
	return false, "", nil
}

func (r *countingReviewer) counts() (tokens, access int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tokens, r.access
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newAuthorizer(rev consumerauth.Reviewer, clock *fakeClock, maxEntries int) *consumerauth.Authorizer {
	return consumerauth.New(consumerauth.Config{
		Namespace: "ns", Reviewer: rev, Now: clock.Now,
		AllowTTL: time.Minute, DenyTTL: 10 * time.Second, MaxEntries: maxEntries,
	})
}

func TestAnswersAreCachedBrieflyAndFailuresNot(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		token    string
		op       consumerapi.Operation
		wantErr  error
		ttl      time.Duration
		wantAsks int // reviews of either kind per uncached answer
	}{
		{"an allowed reader is cached for a minute", "reader", consumerapi.OpConsume, nil, time.Minute, 2},
		{"a forbidden take is cached for ten seconds", "reader", consumerapi.OpTake, consumerapi.ErrForbidden, 10 * time.Second, 2},
		{"an unauthenticated token is cached for ten seconds", "forged", consumerapi.OpConsume, consumerapi.ErrUnauthenticated, 10 * time.Second, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rev := &countingReviewer{}
			clock := &fakeClock{now: time.Unix(1e9, 0)}
			a := newAuthorizer(rev, clock, 0)
			asks := func() int { tk, ac := rev.counts(); return tk + ac }
			for i := range 3 {
				if err := a.Authorize(ctx, tt.token, "rec", tt.op); !errors.Is(err, tt.wantErr) {
					t.Fatalf("answer %d: got %v, want %v", i+1, err, tt.wantErr)
				}
			}
			if got := asks(); got != tt.wantAsks {
				t.Fatalf("three answers asked the API server %d times, want %d (once)", got, tt.wantAsks)
			}
			clock.advance(tt.ttl - time.Millisecond)
			_ = a.Authorize(ctx, tt.token, "rec", tt.op)
			if got := asks(); got != tt.wantAsks {
				t.Fatalf("just before the TTL: asked %d times, want %d", got, tt.wantAsks)
			}
			clock.advance(time.Millisecond)
			if err := a.Authorize(ctx, tt.token, "rec", tt.op); !errors.Is(err, tt.wantErr) {
				t.Fatalf("after the TTL: got %v, want %v", err, tt.wantErr)
			}
			if got := asks(); got != 2*tt.wantAsks {
				t.Fatalf("after the TTL: asked %d times, want %d (again)", got, 2*tt.wantAsks)
			}
		})
	}

	t.Run("a failure to ask is never cached, and is neither 401 nor 403", func(t *testing.T) {
		rev := &countingReviewer{failing: true}
		a := newAuthorizer(rev, &fakeClock{}, 0)
		for range 2 {
			err := a.Authorize(ctx, "reader", "rec", consumerapi.OpConsume)
			var re *consumerauth.ReviewError
			if !errors.As(err, &re) || errors.Is(err, consumerapi.ErrUnauthenticated) || errors.Is(err, consumerapi.ErrForbidden) {
				t.Fatalf("got %v, want a *ReviewError", err)
			}
		}
		if tk, _ := rev.counts(); tk != 2 {
			t.Fatalf("two requests asked %d TokenReviews, want 2", tk)
		}
		if st := a.Stats(); st.Errors != 2 {
			t.Errorf("Stats().Errors = %d, want 2", st.Errors)
		}
	})

	t.Run("a request without a token asks nothing", func(t *testing.T) {
		rev := &countingReviewer{}
		a := newAuthorizer(rev, &fakeClock{}, 0)
		if err := a.Authorize(ctx, "", "rec", consumerapi.OpConsume); !errors.Is(err, consumerapi.ErrUnauthenticated) {
			t.Fatalf("got %v, want ErrUnauthenticated", err)
		}
		if tk, ac := rev.counts(); tk+ac != 0 {
			t.Fatalf("asked %d reviews, want none", tk+ac)
		}
	})
}

func TestEachRecordAndOperationIsAskedAboutOnItsOwn(t *testing.T) {
	ctx := context.Background()
	rev := &countingReviewer{}
	a := newAuthorizer(rev, &fakeClock{}, 0)
	if err := a.Authorize(ctx, "taker", "box", consumerapi.OpTake); err != nil {
		t.Fatalf("take: %v", err)
	}
	want := authorizationv1.ResourceAttributes{Namespace: "ns", Name: "box", Group: "recbuf.dev", Resource: "records", Subresource: "take", Verb: "create"}
	if rev.lastAccessAttrs != want {
		t.Errorf("take asked about %+v, want %+v", rev.lastAccessAttrs, want)
	}
	if err := a.Authorize(ctx, "taker", "box", consumerapi.OpConsume); !errors.Is(err, consumerapi.ErrForbidden) {
		t.Fatalf("a taker's read: got %v, want ErrForbidden (a cached take does not let it read)", err)
	}
	want.Subresource, want.Verb = "consume", "get"
	if rev.lastAccessAttrs != want {
		t.Errorf("consume asked about %+v, want %+v", rev.lastAccessAttrs, want)
	}
	if rev.lastAudience != "recbuf.dev/ns/box" {
		t.Errorf("the TokenReview asked for audience %q, want the Record's, recbuf.dev/ns/box", rev.lastAudience)
	}
	if err := a.Authorize(ctx, "taker", "other", consumerapi.OpTake); err != nil || rev.lastAccessAttrs.Name != "other" {
		t.Errorf("another record: got %v about %q, want nil about \"other\"", err, rev.lastAccessAttrs.Name)
	}
	if rev.lastAudience != "recbuf.dev/ns/other" {
		t.Errorf("the token was reviewed again for audience %q, want recbuf.dev/ns/other: an answer for one Record is not one for another", rev.lastAudience)
	}
}

func TestAFloodOfMadeUpTokensLeavesTheCacheBounded(t *testing.T) {
	ctx := context.Background()
	rev := &countingReviewer{}
	a := newAuthorizer(rev, &fakeClock{}, 100)
	for i := range 10000 {
		_ = a.Authorize(ctx, "forged-"+strings.Repeat("x", i%50)+string(rune('a'+i%26))+string(rune(i)), "rec", consumerapi.OpConsume)
	}
	if n := a.Len(); n > 100 {
		t.Fatalf("cache holds %d answers, want at most 100", n)
	}
	if err := a.Authorize(ctx, "reader", "rec", consumerapi.OpConsume); err != nil {
		t.Fatalf("a genuine reader after the flood: %v", err)
	}
}

func TestNoAnswerCarriesTheToken(t *testing.T) {
	ctx := context.Background()
	const secret = "eyJhbGciOiJSUzI1NiJ9.secret-token-body"
	for _, failing := range []bool{false, true} {
		a := newAuthorizer(&countingReviewer{failing: failing}, &fakeClock{}, 0)
		if err := a.Authorize(ctx, secret, "rec", consumerapi.OpConsume); err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("failing=%v: got %v, want an error without the token", failing, err)
		}
	}
}

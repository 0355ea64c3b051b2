package kubectlplugin

import (
	"context"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// tokenLifetime is how long a requested token lasts: the API server's
// least (ten minutes). tokenRenewal is how long before it expires the
// plugin asks for the next.
const (
	tokenLifetime = 10 * time.Minute
	tokenRenewal  = 2 * time.Minute
)

// tokenSource requests tokens of a ServiceAccount for one audience, the
// Record's, with TokenRequest, and hands out the current one until it is
// about to expire.
type tokenSource struct {
	k                         *kube
	namespace, serviceAccount string
	audience                  string

	mu      sync.Mutex
	current string
	expires time.Time
}

func (s *tokenSource) token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current != "" && time.Until(s.expires) > tokenRenewal {
		return s.current, nil
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         []string{s.audience},
		ExpirationSeconds: ptr.To(int64(tokenLifetime / time.Second)),
	}}
	got, err := s.k.cs.CoreV1().ServiceAccounts(s.namespace).CreateToken(ctx, s.serviceAccount, tr, metav1.CreateOptions{})
	if err != nil {
		return "", s.k.explainIn(s.namespace, err, "create", "serviceaccounts/token", s.serviceAccount)
	}
	s.current, s.expires = got.Status.Token, got.Status.ExpirationTimestamp.Time
	return s.current, nil
}

package controllers

// This file keeps a Record's NATS credentials where the cluster admin
// allows them to go. A Record that names spec.source.nats.credentialsSecretRef
// makes its buffer pods present that Secret's token, password or creds
// file to the servers of spec.source.nats.url, which the Record's author
// chooses: without a check, anyone who may create a Record could point it
// at a server of theirs and collect a credential an admin put into the
// namespace for another use. So:
//
//   - with credentials, every server must be among Config.AllowedNATSServers
//     (the manager's --allowed-nats-servers, by default its own --nats-url);
//   - with credentials, a plaintext (nats://, ws://) server other than the
//     manager's own is refused unless Config.AllowPlaintextNATSCredentials.
//
// Servers are compared in the form the pods resolve them to
// (natsconn.Server.Qualified): a bare Service name in a Record is that
// Service of the Record's namespace, never the manager's server of the same
// name. The manager's own lists hold no bare names (cmd/manager refuses
// them).
//
// A refused Record is Stalled with a reason that says which rule and which
// server. Its Deployment is not created; an existing one (the Record was
// edited to point elsewhere) is left as it was, neither updated nor
// deleted: its pods hold the credentials for the last allowed server only,
// and keep serving consumers until the spec is fixed.

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/natsconn"
)

// natsRefusal says why a Record's NATS source is refused; the zero value
// means it is not.
type natsRefusal struct {
	reason, message string
}

// checkNATSSource applies the rules above to rec.
func checkNATSSource(rec *recbufv1alpha1.Record, cfg Config) natsRefusal {
	if credentialsRef(rec) == nil || rec.Spec.Source == nil || rec.Spec.Source.NATS.URL == "" {
		// No credentials, or the manager's own server.
		return natsRefusal{}
	}
	servers, err := natsconn.ParseServers(rec.Spec.Source.NATS.URL)
	if err != nil {
		return natsRefusal{recbufv1alpha1.ReasonNATSServerNotAllowed, fmt.Sprintf("spec.source.nats.url: %v", err)}
	}
	// The manager validated both lists at start (cmd/manager).
	defaults, _ := natsconn.ParseServers(cfg.NATSURL)
	defaults = qualified(defaults, "")
	allowed := defaults
	if len(cfg.AllowedNATSServers) > 0 {
		allowed = nil
		for _, a := range cfg.AllowedNATSServers {
			s, _ := natsconn.ParseServers(a)
			allowed = append(allowed, qualified(s, "")...)
		}
	}
	for _, s := range servers {
		q := s.Qualified(rec.Namespace)
		if !hasAddr(allowed, q.Addr) {
			name := s.Addr
			if q.Addr != s.Addr {
				name = fmt.Sprintf("%s (%s from the Record's namespace)", s.Addr, q.Addr)
			}
			return natsRefusal{recbufv1alpha1.ReasonNATSServerNotAllowed, fmt.Sprintf(
				"spec.source.nats.url names %s, which is not among the NATS servers the cluster admin allows a Record's credentials to go to (the manager's --allowed-nats-servers): no buffer pod is created or updated with it",
				name)}
		}
	}
	if cfg.AllowPlaintextNATSCredentials {
		return natsRefusal{}
	}
	for _, s := range servers {
		if s.Plaintext() && !hasAddr(defaults, s.Qualified(rec.Namespace).Addr) {
			return natsRefusal{recbufv1alpha1.ReasonPlaintextNATSCredentials, fmt.Sprintf(
				"spec.source.nats.url would send the credentials of spec.source.nats.credentialsSecretRef over plaintext %s:// to %s, which is not the manager's own NATS server: use tls:// or wss:// (or the cluster admin allows it with --allow-plaintext-nats-credentials); no buffer pod is created or updated with it",
				s.Scheme, s.Addr)}
		}
	}
	return natsRefusal{}
}

// qualified is each of servers Qualified in namespace.
func qualified(servers []natsconn.Server, namespace string) []natsconn.Server {
	out := make([]natsconn.Server, len(servers))
	for i, s := range servers {
		out[i] = s.Qualified(namespace)
	}
	return out
}

func hasAddr(servers []natsconn.Server, addr string) bool {
	for _, s := range servers {
		if s.Addr == addr {
			return true
		}
	}
	return false
}

// reconcileDeploymentWithinPolicy reconciles the Deployment when the
// Record's NATS source is allowed; otherwise it only observes an existing
// Deployment of the Record's, for the status, and leaves it as it is.
func (r *RecordReconciler) reconcileDeploymentWithinPolicy(ctx context.Context, s *recordScope) error {
	s.natsRefusal = checkNATSSource(s.record, r.Config)
	if s.natsRefusal.reason == "" && !adoptedStreamUnvetted(s.stream) {
		return r.reconcileDeployment(ctx, s)
	}
	d := &appsv1.Deployment{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.record.Namespace, Name: s.record.ChildName()}, d); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading Deployment %s: %w", s.record.ChildName(), err)
	}
	if metav1.IsControlledBy(d, s.record) {
		s.deployment = d
	}
	return nil
}

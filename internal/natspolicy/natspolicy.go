// Package natspolicy keeps a Record's NATS credentials where the cluster
// admin allows them to go. A Record that names
// spec.source.nats.credentialsSecretRef makes its buffer pods present that
// Secret's token, password or creds file to the servers of
// spec.source.nats.url, which the Record's author chooses: without a
// check, anyone who may create a Record could point it at a server of
// theirs and collect a credential an admin put into the namespace for
// another use. So:
//
//   - with credentials, every server must be among Policy.Allowed (the
//     manager's --allowed-nats-servers, by default its own --nats-url);
//   - with credentials, a plaintext (nats://, ws://) server other than the
//     manager's own is refused unless Policy.AllowPlaintext.
//
// Servers are compared in the form the pods resolve them to
// (natsconn.Server.Qualified): a bare Service name in a Record is that
// Service of the Record's namespace, never the manager's server of the same
// name. The manager's own lists hold no bare names (cmd/manager refuses
// them).
//
// The reconciler stalls a refused Record and the injection webhook refuses
// to inject it, each with the Refusal's reason and message.
package natspolicy

import (
	"fmt"

	recbufv1alpha1 "github.com/recbuf/recbuf/api/v1alpha1"
	"github.com/recbuf/recbuf/internal/natsconn"
)

// Policy is the cluster admin's word on where credentials may go.
type Policy struct {
	// DefaultURL is the manager's own server: that of Records naming none.
	DefaultURL string
	// Allowed are the servers (URLs or host:port, each may be a
	// comma-separated list) a Record with credentials may connect to;
	// empty means DefaultURL's.
	Allowed []string
	// AllowPlaintext lets such a Record send its credentials over
	// plaintext nats:// or ws:// to a server other than DefaultURL's.
	AllowPlaintext bool
}

// Refusal says why a Record's NATS source is refused; the zero value means
// it is not.
type Refusal struct {
	// Reason is the Stalled condition's reason, Message says which rule
	// and which server.
	Reason, Message string
}

// Refused reports whether r refuses the source.
func (r Refusal) Refused() bool { return r.Reason != "" }

// Check applies the policy to rec.
func Check(rec *recbufv1alpha1.Record, p Policy) Refusal {
	src := rec.Spec.Source
	if src == nil || src.NATS.CredentialsSecretRef == nil || src.NATS.URL == "" {
		// No credentials, or the manager's own server.
		return Refusal{}
	}
	servers, err := natsconn.ParseServers(src.NATS.URL)
	if err != nil {
		return Refusal{recbufv1alpha1.ReasonNATSServerNotAllowed, fmt.Sprintf("spec.source.nats.url: %v", err)}
	}
	// The manager validated both lists at start (cmd/manager).
	defaults, _ := natsconn.ParseServers(p.DefaultURL)
	defaults = qualified(defaults, "")
	allowed := defaults
	if len(p.Allowed) > 0 {
		allowed = nil
		for _, a := range p.Allowed {
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
			return Refusal{recbufv1alpha1.ReasonNATSServerNotAllowed, fmt.Sprintf(
				"spec.source.nats.url names %s, which is not among the NATS servers the cluster admin allows a Record's credentials to go to (the manager's --allowed-nats-servers): no buffer pod is created or updated with it",
				name)}
		}
	}
	if p.AllowPlaintext {
		return Refusal{}
	}
	for _, s := range servers {
		if s.Plaintext() && !hasAddr(defaults, s.Qualified(rec.Namespace).Addr) {
			return Refusal{recbufv1alpha1.ReasonPlaintextNATSCredentials, fmt.Sprintf(
				"spec.source.nats.url would send the credentials of spec.source.nats.credentialsSecretRef over plaintext %s:// to %s, which is not the manager's own NATS server: use tls:// or wss:// (or the cluster admin allows it with --allow-plaintext-nats-credentials); no buffer pod is created or updated with it",
				s.Scheme, s.Addr)}
		}
	}
	return Refusal{}
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

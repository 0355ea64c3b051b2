package controllers

// This file keeps a Record's NATS credentials where the cluster admin
// allows them to go (package natspolicy holds the rules). A refused Record
// is Stalled with a reason that says which rule and which server. Its
// Deployment is not created; an existing one (the Record was edited to
// point elsewhere) is left as it was, neither updated nor deleted: its
// pods hold the credentials for the last allowed server only, and keep
// serving consumers until the spec is fixed.

import (
	"github.com/recbuf/recbuf/internal/natspolicy"
)

// NATSPolicy is the manager's word on where credentials may go.
func (c Config) NATSPolicy() natspolicy.Policy {
	return natspolicy.Policy{DefaultURL: c.NATSURL, Allowed: c.AllowedNATSServers, AllowPlaintext: c.AllowPlaintextNATSCredentials}
}

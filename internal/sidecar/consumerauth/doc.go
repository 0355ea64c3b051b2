// Package consumerauth authenticates and authorizes the consumers of a
// buffer process's consumer API with Kubernetes: a consumer presents a
// ServiceAccount token whose audience is the Record's own,
// recbuf.dev/NAMESPACE/NAME (Authorization: Bearer), so that a token for
// one Record is refused by every other; the process checks it with a
// TokenReview for that audience and asks a
// SubjectAccessReview whether its user may use the Record: verb get on the
// subresource records/consume to read (stream, latest, info), verb create
// on records/take to take (and to stream a Mailbox, which takes). It does
// what kube-rbac-proxy does in front of an HTTP server, inside the process.
//
// Decisions are cached briefly, by a hash of the token and what is asked
// (AllowTTL for an answer that lets the request in, DenyTTL for one that
// does not), so that a stream's reconnections or a poller's requests do
// not each cost the API server two reviews. Tokens are never logged or
// kept: the cache holds their SHA-256 only.
//
// An Authorizer is safe for concurrent use.
package consumerauth

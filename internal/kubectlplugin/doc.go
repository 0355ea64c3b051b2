// Package kubectlplugin is the logic of kubectl-recbuf, the kubectl plugin
// that reads a Record from a user's terminal: `kubectl recbuf stream`
// (also `tail`), `latest`, `take`, `status` and `publish`.
//
// It uses the user's kubeconfig (and --kubeconfig, --context, -n) and so
// the user's own permissions: it reads the Record, its Service and pods,
// and port-forwards through the API server to one Ready buffer pod (or to
// the Record's NATS server, for publish), then talks to it with pkg/client
// or nats.go over the forwarded local port. Nothing runs in another
// terminal and nothing is installed in the cluster.
//
// The in-cluster client, cmd/recbufctl, stays: it reads a record by its
// Service URL from a pod, needs no kubeconfig or API access, and prints
// the same JSON value lines (internal/valueout), so that scripts read both
// alike.
//
// Run is for one command at a time; nothing here is shared between
// goroutines except as documented.
package kubectlplugin

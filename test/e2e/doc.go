//go:build e2e

// Package e2e is recbuf's end-to-end suite: on a real kind cluster it does
// what users do — `helm install` the chart (with its development NATS
// server), `kubectl apply` the sample Records, publish with the edge
// simulator, read the buffers from consumer pods, and watch lag and
// overwrites in `kubectl get records` — and checks each outcome as a named
// step. Run it with `make test-e2e` (build tag e2e).
//
// The suite creates the cluster, or reuses a running one, with
// hack/kind.sh (KIND_CLUSTER, default recbuf-e2e), builds the images with
// hack/docker-build.sh and loads them with `kind load`. It talks to the
// cluster through kubectl and helm (bin/helm, or $HELM) under the context
// kind-$KIND_CLUSTER, so it never touches another cluster. Each run starts
// from a clean slate (release, CRD and test namespace removed) and cleans up
// after itself unless E2E_KEEP=1; E2E_SKIP_BUILD=1 reuses the images already
// built. When a spec fails, the manager's and the buffer pods' logs and the
// events are written to GinkgoWriter and to test/e2e/artifacts/.
//
// The specs are one ordered sequence sharing the cluster; they run in a
// single process, one at a time.
package e2e

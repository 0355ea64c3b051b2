#!/usr/bin/env bash
# kind.sh manages the single-node kind cluster that `make demo` and
# `make test-e2e` use.
#
#   hack/kind.sh create           create the cluster, or reuse it when its node runs
#   hack/kind.sh load IMAGE...    load local Docker images into the cluster's node
#   hack/kind.sh network-policy   make the cluster enforce NetworkPolicy
#   hack/kind.sh delete           delete the cluster
#   hack/kind.sh kind             print the path of the kind binary it uses
#
# Environment: KIND_CLUSTER (default recbuf-e2e), KIND_NODE_IMAGE (overrides
# the node image), KIND_OFFLINE_WORK (the offline tool's cache folder),
# KIND_RECREATE=1 (delete an existing cluster first: a clean slate, as CI wants).
#
# A reused cluster may have just been restarted with its Docker engine (kind
# nodes restart with it): its API server then answers before it authorizes
# anyone, so `create` waits until the cluster really serves, and recreates a
# reused cluster that does not within the deadline.
#
# Where ../shared/kind/build-node-image.sh exists beside the repository (this
# project's offline machines and CI), that tool provides the Docker engine,
# the node image, the egress-guarded `kind` network (required before any
# cluster is created there) and the cluster settings its image needs.
# Elsewhere the user's Docker, kind's default node image and a kind binary
# pinned below (installed into ./bin) are used.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
KIND_VERSION=v0.33.0
CLUSTER=${KIND_CLUSTER:-recbuf-e2e}
DOCKER=${DOCKER:-$([[ -x /usr/bin/docker ]] && echo /usr/bin/docker || echo docker)}
shared_kind=$root/../shared/kind/build-node-image.sh
offline_work=${KIND_OFFLINE_WORK:-/var/cache/kind-offline}

log() { echo "kind.sh: $*" >&2; }

offline() { [[ -x $shared_kind ]]; }

# kind_bin prints the kind binary: the offline tool's, or ./bin/kind-$KIND_VERSION.
kind_bin() {
  if offline && [[ -x $offline_work/out/bin/kind ]]; then
    echo "$offline_work/out/bin/kind"; return
  fi
  local k=$root/bin/kind-$KIND_VERSION
  if [[ ! -x $k ]]; then
    log "installing sigs.k8s.io/kind@$KIND_VERSION into bin/"
    GOPROXY=$(go env GOPROXY)
    GOPROXY=${GOPROXY%,direct} GOBIN=$root/bin/.kind-install go install "sigs.k8s.io/kind@$KIND_VERSION" >&2
    mv "$root/bin/.kind-install/kind" "$k"; rmdir "$root/bin/.kind-install"
  fi
  echo "$k"
}

node_running() {
  [[ $($DOCKER inspect -f '{{.State.Running}}' "$CLUSTER-control-plane" 2>/dev/null) == true ]]
}

# create_with_config CONFIG: reuse a running cluster, otherwise (re)create it.
create_with_config() {
  local kind; kind=$(kind_bin)
  if "$kind" get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    if node_running; then log "reusing cluster $CLUSTER"; return; fi
    log "cluster $CLUSTER exists but its node is stopped: recreating it"
    "$kind" delete cluster --name "$CLUSTER" >&2
  fi
  "$kind" create cluster --name "$CLUSTER" --config "$1" --wait 3m >&2
}

# healthy SECONDS: wait until the cluster's API serves and authorizes us, its
# node is Ready and its system pods (CoreDNS among them) are Ready.
healthy() {
  local ctx=kind-$CLUSTER deadline=$((SECONDS + $1))
  until [[ $(kubectl --context "$ctx" auth can-i list nodes 2>/dev/null) == yes ]]; do
    ((SECONDS < deadline)) || { log "the API server of $CLUSTER does not serve"; return 1; }
    sleep 2
  done
  local left=$((deadline - SECONDS)); ((left > 10)) || left=10
  kubectl --context "$ctx" wait --for=condition=Ready nodes --all --timeout="${left}s" >&2 || return 1
  left=$((deadline - SECONDS)); ((left > 10)) || left=10
  kubectl --context "$ctx" -n kube-system wait --for=condition=Ready pods --all \
    --field-selector=status.phase!=Succeeded --timeout="${left}s" >&2
}

create() {
  if [[ ${KIND_RECREATE:-} == 1 ]]; then delete; fi
  make_cluster
  healthy 180 && return
  log "cluster $CLUSTER is not healthy: recreating it"
  delete
  make_cluster
  healthy 180
}

make_cluster() {
  mkdir -p "$root/bin"
  local config=$root/bin/kind-config-$CLUSTER.yaml
  if offline; then
    if [[ -z ${KIND_NODE_IMAGE:-} ]]; then
      # The tool builds (or finds cached) its node image, makes the network
      # and creates or reuses the cluster; a node on an outdated image is recreated.
      CLUSTER=$CLUSTER "$shared_kind" create >&2
    else
      "$shared_kind" network >&2
      CLUSTER=$CLUSTER NODE_IMAGE=$KIND_NODE_IMAGE "$shared_kind" config > "$config"
      create_with_config "$config"
    fi
  else
    {
      echo "kind: Cluster"
      echo "apiVersion: kind.x-k8s.io/v1alpha4"
      echo "nodes:"
      echo "- role: control-plane"
      [[ -z ${KIND_NODE_IMAGE:-} ]] || echo "  image: $KIND_NODE_IMAGE"
    } > "$config"
    create_with_config "$config"
  fi
}

# network_policy makes the cluster enforce NetworkPolicy. The offline node
# image's static bridge CNI ignores it: ../shared/kind/network-policy.sh
# installs kube-network-policies (the agent kindnet embeds), ~90 s cold, a
# few seconds when cached. kind's own default CNI, kindnet, enforces
# NetworkPolicy since kind v0.24: nothing to do there.
network_policy() {
  local np=$root/../shared/kind/network-policy.sh
  if offline; then
    [[ -x $np ]] || { log "$np is missing: the offline cluster's CNI cannot enforce NetworkPolicy"; exit 1; }
    CLUSTER=$CLUSTER KIND_OFFLINE_WORK=$offline_work "$np" install >&2
  else
    log "kind's default CNI (kindnet) enforces NetworkPolicy: nothing to install"
  fi
}

load() {
  (($#)) || { log "load: no image given"; exit 2; }
  "$(kind_bin)" load docker-image --name "$CLUSTER" "$@" >&2
}

delete() {
  # The engine must answer, or an existing cluster would look absent.
  if offline; then "$shared_kind" docker >&2; fi
  local kind; kind=$(kind_bin)
  if "$kind" get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    "$kind" delete cluster --name "$CLUSTER" >&2
  else
    log "no cluster $CLUSTER"
  fi
}

cmd=${1:-}
shift || true
case $cmd in
  create) create ;;
  load) load "$@" ;;
  network-policy) network_policy ;;
  delete) delete ;;
  kind) kind_bin ;;
  *) echo "usage: $0 create|load IMAGE...|network-policy|delete|kind" >&2; exit 2 ;;
esac

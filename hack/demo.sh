#!/usr/bin/env bash
# demo.sh brings up a kind cluster running recbuf with the sample Records and
# an edge simulator publishing to them (`make demo`), or deletes it
# (`make demo-down`).
#
#   hack/demo.sh up     idempotent: creates or reuses the cluster, rebuilds and
#                       loads the images, installs or upgrades the chart
#                       (with its development NATS server), applies the
#                       samples and the simulator, and waits for the Records
#   hack/demo.sh down   deletes the cluster
#
# Environment: KIND_CLUSTER (default recbuf-demo), DEMO_NAMESPACE (default
# default), MANAGER_IMG, SIDECAR_IMG, EDGESIM_IMG, NATS_IMG, BASE_IMAGE,
# HELM (default bin/helm), KIND_NODE_IMAGE (see hack/kind.sh).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

export KIND_CLUSTER=${KIND_CLUSTER:-recbuf-demo}
export MANAGER_IMG=${MANAGER_IMG:-recbuf/manager:dev}
export SIDECAR_IMG=${SIDECAR_IMG:-recbuf/sidecar:dev}
export EDGESIM_IMG=${EDGESIM_IMG:-recbuf/edgesim:dev}
export NATS_IMG=${NATS_IMG:-recbuf/nats:dev}
NS=${DEMO_NAMESPACE:-default}
HELM=${HELM:-$root/bin/helm}
ctx=kind-$KIND_CLUSTER

log() { echo "demo: $*" >&2; }
k() { kubectl --context "$ctx" "$@"; }

# image_values KEY IMAGE: helm flags that set KEY.repository and KEY.tag.
image_values() {
  local key=$1 image=$2 repo tag=""
  repo=$image
  if [[ ${image##*/} == *:* ]]; then repo=${image%:*}; tag=${image##*:}; fi
  echo "--set $key.repository=$repo --set-string $key.tag=$tag"
}

up() {
  [[ -x $HELM ]] || { log "helm not found at $HELM: run 'make helm' or set HELM"; exit 1; }
  log "cluster $KIND_CLUSTER"
  hack/kind.sh create
  log "images"
  hack/docker-build.sh
  hack/kind.sh load "$MANAGER_IMG" "$SIDECAR_IMG" "$EDGESIM_IMG" "$NATS_IMG"

  log "chart recbuf with its development NATS server, in namespace recbuf-system"
  # shellcheck disable=SC2046 # image_values prints separate flags
  "$HELM" --kube-context "$ctx" upgrade --install recbuf charts/recbuf \
    --namespace recbuf-system --create-namespace --set nats.enabled=true \
    $(image_values image "$MANAGER_IMG") $(image_values bufferImage "$SIDECAR_IMG") \
    $(image_values nats.image "$NATS_IMG") --wait --timeout 5m >/dev/null

  log "sample Records and the edge simulator, in namespace $NS"
  k get namespace "$NS" >/dev/null 2>&1 || k create namespace "$NS" >/dev/null
  k apply -n "$NS" -k config/samples >/dev/null
  # The persistent sample, kept in the development NATS's JetStream.
  k apply -n "$NS" -k config/samples/persistent >/dev/null
  k apply -n "$NS" -k config/simulator >/dev/null
  k -n "$NS" set image deployment/edgesim edgesim="$EDGESIM_IMG" >/dev/null
  log "waiting for the Records to be Ready"
  k -n "$NS" wait --for=condition=Ready records --all --timeout=5m >/dev/null
  k -n "$NS" wait --for=jsonpath='{.status.produced}' records --all --timeout=2m >/dev/null
  log "an app reading the telemetry Record from its own sidecar, on localhost"
  k apply -n "$NS" -k config/sidecar-app >/dev/null
  k -n "$NS" set image deployment/telemetry-reader app="$EDGESIM_IMG" >/dev/null
  k -n "$NS" rollout status deployment/telemetry-reader --timeout=3m >/dev/null
  k -n "$NS" get records -o wide

  cat <<EOF

recbuf is running on kind cluster $KIND_CLUSTER (kubectl context $ctx).
The edge simulator publishes 10 telemetry readings, states and commands a second.

Watch the Records' counters move (produced, lag, overwrites):

  kubectl --context $ctx -n $NS get records -w

Stream the telemetry record (Server-Sent Events, one value per event):

  kubectl --context $ctx -n $NS port-forward svc/telemetry-recbuf 8080:8080 &
  curl -N http://localhost:8080/v1/records/telemetry/events

Read the latest device state, take a pending command:

  kubectl --context $ctx -n $NS port-forward svc/state-recbuf 8081:8080 &
  curl http://localhost:8081/v1/records/state/latest
  kubectl --context $ctx -n $NS port-forward svc/commands-recbuf 8082:8080 &
  curl -X POST 'http://localhost:8082/v1/records/commands/take?timeout=5s'

See the durable telemetry record's JetStream stream (docs/persistence.md),
and that a restarted buffer pod comes back with the values it held:

  kubectl --context $ctx -n $NS get record telemetry-durable -o jsonpath='{.status.stream}{"\n"}'
  kubectl --context $ctx -n $NS rollout restart deployment/telemetry-durable-recbuf

Publish as an MQTT gateway would (topic devices/telemetry is subject devices.telemetry):

  kubectl --context $ctx -n recbuf-system port-forward svc/recbuf-nats 1883:1883 &
  mosquitto_pub -p 1883 -q 1 -t devices/telemetry -m '{"device":"mcu-1","seq":1,"temperature":21.5}'

An app with the telemetry buffer injected as a sidecar reads it on localhost
(docs/sidecar.md); the Record counts it in SIDECARS:

  kubectl --context $ctx -n $NS logs deployment/telemetry-reader -c app -f
  kubectl --context $ctx -n $NS get records -o wide

Or consume from inside the cluster with recbufctl (in the edgesim image):

  kubectl --context $ctx -n $NS run consumer --rm -it --restart=Never --image=$EDGESIM_IMG \\
    --image-pull-policy=IfNotPresent --command -- /recbufctl stream http://telemetry-recbuf.$NS.svc:8080/v1/records/telemetry

Remove it all with: make demo-down
EOF
}

down() {
  hack/kind.sh delete
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac

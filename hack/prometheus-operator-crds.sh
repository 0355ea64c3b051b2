#!/usr/bin/env bash
# prometheus-operator-crds.sh generates the Prometheus Operator's CRDs that
# the chart can create objects of, ServiceMonitor and PrometheusRule, and
# prints their paths, one a line. The e2e suite installs them so that the
# chart's ServiceMonitors and PrometheusRule are checked by a real API server
# against the real schemas.
#
# Why generated: our build machines reach neither GitHub nor a registry, only
# the Go module proxy. The operator generates its CRDs with controller-gen
# from the types of its API module; so do we, from the pinned module version.
# Cached under bin/ afterwards.
#
# Environment: CONTROLLER_GEN (default bin/controller-gen).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
VERSION=v0.95.2
module=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring
out=$root/bin/prometheus-operator-$VERSION
kinds=(servicemonitors prometheusrules)
CONTROLLER_GEN=${CONTROLLER_GEN:-$root/bin/controller-gen}

missing=false
for k in "${kinds[@]}"; do
  [[ -s $out/monitoring.coreos.com_$k.yaml ]] || missing=true
done

if $missing; then
  # Only the module proxy is reachable here; never fall back to VCS fetches.
  GOPROXY=$(go env GOPROXY); export GOPROXY=${GOPROXY%,direct}
  export GOFLAGS=-mod=mod
  dir=$(go mod download -json "$module@$VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [[ -n $dir ]] || { echo "prometheus-operator-crds: could not download $module@$VERSION" >&2; exit 1; }
  # The module cache is read-only; controller-gen needs a writable copy.
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  cp -r "$dir/." "$work/"; chmod -R u+w "$work"
  (cd "$work" && "$CONTROLLER_GEN" crd:maxDescLen=0,allowDangerousTypes=true paths=./v1/... output:crd:dir="$work/crds" >&2)
  mkdir -p "$out"
  for k in "${kinds[@]}"; do
    cp "$work/crds/monitoring.coreos.com_$k.yaml" "$out/"
  done
fi
for k in "${kinds[@]}"; do
  echo "$out/monitoring.coreos.com_$k.yaml"
done

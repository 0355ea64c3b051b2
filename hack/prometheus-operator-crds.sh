#!/usr/bin/env bash
# servicemonitor-crd.sh generates the Prometheus Operator's ServiceMonitor CRD
# and prints its path. The e2e suite installs it so that the chart's
# ServiceMonitors are checked by a real API server against the real schema.
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
crd=$out/monitoring.coreos.com_servicemonitors.yaml
CONTROLLER_GEN=${CONTROLLER_GEN:-$root/bin/controller-gen}

if [[ ! -s $crd ]]; then
  # Only the module proxy is reachable here; never fall back to VCS fetches.
  GOPROXY=$(go env GOPROXY); export GOPROXY=${GOPROXY%,direct}
  export GOFLAGS=-mod=mod
  dir=$(go mod download -json "$module@$VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [[ -n $dir ]] || { echo "servicemonitor-crd: could not download $module@$VERSION" >&2; exit 1; }
  # The module cache is read-only; controller-gen needs a writable copy.
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  cp -r "$dir/." "$work/"; chmod -R u+w "$work"
  (cd "$work" && "$CONTROLLER_GEN" crd:maxDescLen=0,allowDangerousTypes=true paths=./v1/... output:crd:dir="$work/crds" >&2)
  mkdir -p "$out"
  cp "$work/crds/monitoring.coreos.com_servicemonitors.yaml" "$crd"
fi
echo "$crd"

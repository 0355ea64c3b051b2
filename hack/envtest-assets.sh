#!/usr/bin/env bash
# envtest-assets.sh builds the kube-apiserver and etcd binaries that envtest
# runs, from the Go modules pinned under hack/tools/, and prints the folder
# that holds them (use it as KUBEBUILDER_ASSETS).
#
# Why: setup-envtest downloads these binaries from a release bucket that our
# build machines cannot reach. Building them from modules needs only the Go
# module proxy. Cold: ~7 min on 2 cores (kube-apiserver ~6 min, etcd
# ~30 s); cached afterwards (a stamp file per version under bin/).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
K8S_VERSION=${K8S_VERSION:-v1.34.4}
ETCD_VERSION=${ETCD_VERSION:-3.6.5}
out=${ENVTEST_ASSETS_DIR:-$root/bin/k8s/$K8S_VERSION}
mkdir -p "$out"

export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
# Only the module proxy is reachable here; never fall back to VCS fetches.
GOPROXY=$(go env GOPROXY); export GOPROXY=${GOPROXY%,direct}

log() { echo "envtest-assets: $*" >&2; }

if [[ ! -x $out/kube-apiserver || ! -f $out/.apiserver-$K8S_VERSION ]]; then
  log "building kube-apiserver $K8S_VERSION (cold: ~6 min on 2 cores)"
  v=${K8S_VERSION#v}
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=${v%%.*} -X $p.gitMinor=$(cut -d. -f2 <<<"$v")"
    ld+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$root/hack/tools/k8s" && go build -trimpath -ldflags "$ld" -o "$out/" k8s.io/kubernetes/cmd/kube-apiserver)
  touch "$out/.apiserver-$K8S_VERSION"
fi

if [[ ! -x $out/etcd || ! -f $out/.etcd-$ETCD_VERSION ]]; then
  log "building etcd $ETCD_VERSION (cold: ~30 s)"
  (cd "$root/hack/tools/etcd" && go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=v$ETCD_VERSION" -o "$out/etcd" .)
  touch "$out/.etcd-$ETCD_VERSION"
fi

# envtest only needs kubectl for its optional helpers; reuse one on PATH.
if [[ ! -e $out/kubectl ]] && command -v kubectl >/dev/null; then
  ln -sf "$(command -v kubectl)" "$out/kubectl"
fi

echo "$out"

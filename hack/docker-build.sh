#!/usr/bin/env bash
# docker-build.sh builds recbuf's images from static binaries compiled on the
# host: manager, sidecar, edgesim (with recbufctl) and nats-server.
#
#   hack/docker-build.sh [manager|sidecar|edgesim|nats ...]   (default: all four)
#
# Why host-compiled: our build machines reach no container registry, so no
# golang builder image can be pulled; with BASE_IMAGE=scratch (the default)
# `docker build` needs no image at all. Users may pass
# BASE_IMAGE=gcr.io/distroless/static:nonroot.
#
# Environment: MANAGER_IMG, SIDECAR_IMG, EDGESIM_IMG, NATS_IMG (tags),
# BASE_IMAGE, GOARCH (default: the Docker engine's architecture), DOCKER.
# Where ../shared/kind/build-node-image.sh exists (this project's machines and
# CI) it starts the Docker engine when none answers.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

MANAGER_IMG=${MANAGER_IMG:-recbuf/manager:dev}
SIDECAR_IMG=${SIDECAR_IMG:-recbuf/sidecar:dev}
EDGESIM_IMG=${EDGESIM_IMG:-recbuf/edgesim:dev}
NATS_IMG=${NATS_IMG:-recbuf/nats:dev}
BASE_IMAGE=${BASE_IMAGE:-scratch}
DOCKER=${DOCKER:-$([[ -x /usr/bin/docker ]] && echo /usr/bin/docker || echo docker)}
shared_kind=$root/../shared/kind/build-node-image.sh

log() { echo "docker-build: $*" >&2; }

if ! $DOCKER version >/dev/null 2>&1; then
  if [[ -x $shared_kind ]]; then
    log "starting the Docker engine with $shared_kind"
    "$shared_kind" docker >&2
  else
    log "no Docker engine answers ($DOCKER version failed)"; exit 1
  fi
fi

export CGO_ENABLED=0 GOFLAGS=${GOFLAGS:--buildvcs=false}
GOOS=linux; export GOOS
GOARCH=${GOARCH:-$($DOCKER version -f '{{.Server.Arch}}' 2>/dev/null || go env GOARCH)}; export GOARCH
# Only the module proxy is reachable here; never fall back to VCS fetches.
GOPROXY=$(go env GOPROXY); export GOPROXY=${GOPROXY%,direct}

version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
ctxroot=$root/bin/docker

# context NAME: a fresh build context with rootfs/ (CA certificates when the
# host has them, so that TLS to NATS works on scratch).
context() {
  local dir=$ctxroot/$1
  rm -rf "$dir"; mkdir -p "$dir/rootfs/etc/ssl/certs"
  if [[ -r /etc/ssl/certs/ca-certificates.crt ]]; then
    cp /etc/ssl/certs/ca-certificates.crt "$dir/rootfs/etc/ssl/certs/"
  fi
  echo "$dir"
}

# gobuild DIR PKG NAME: a static, reproducible binary.
gobuild() {
  go build -trimpath -ldflags "-s -w" -o "$1/$3" "$2"
}

# image NAME TAG DIR: docker build of build/NAME.Dockerfile on DIR. The classic
# builder works with FROM scratch and without a BuildKit frontend image.
image() {
  log "building $2 (BASE_IMAGE=$BASE_IMAGE, $GOARCH)"
  DOCKER_BUILDKIT=0 $DOCKER build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --label "org.opencontainers.image.version=$version" \
    -f "build/$1.Dockerfile" -t "$2" "$3" >/dev/null
}

build_manager() {
  local d; d=$(context manager)
  gobuild "$d" ./cmd/manager manager
  image manager "$MANAGER_IMG" "$d"
}

build_sidecar() {
  local d; d=$(context sidecar)
  gobuild "$d" ./cmd/sidecar sidecar
  image sidecar "$SIDECAR_IMG" "$d"
}

build_edgesim() {
  local d; d=$(context edgesim)
  gobuild "$d" ./cmd/edgesim edgesim
  gobuild "$d" ./cmd/recbufctl recbufctl
  image edgesim "$EDGESIM_IMG" "$d"
}

build_nats() {
  local d; d=$(context nats-server)
  # The module's root is its main package; the version is pinned in go.mod.
  gobuild "$d" github.com/nats-io/nats-server/v2 nats-server
  image nats-server "$NATS_IMG" "$d"
}

targets=("$@")
((${#targets[@]})) || targets=(manager sidecar edgesim nats)
for t in "${targets[@]}"; do
  case $t in
    manager|sidecar|edgesim|nats) "build_$t" ;;
    *) log "unknown image $t (want manager, sidecar, edgesim or nats)"; exit 2 ;;
  esac
done
# Rebuilding under the same tags leaves the previous images untagged; remove
# those of ours only (by our source label), never anything else's.
$DOCKER image prune -f --filter dangling=true \
  --filter label=org.opencontainers.image.source=https://github.com/recbuf/recbuf >/dev/null
log "done: $(for t in "${targets[@]}"; do case $t in manager) echo -n "$MANAGER_IMG ";; sidecar) echo -n "$SIDECAR_IMG ";; edgesim) echo -n "$EDGESIM_IMG ";; nats) echo -n "$NATS_IMG ";; esac; done)"

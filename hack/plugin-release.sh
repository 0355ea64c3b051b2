#!/usr/bin/env bash
# plugin-release.sh builds the kubectl plugin, kubectl-recbuf, for each
# platform into dist/: one archive per platform (what krew installs), the
# binaries themselves (for a download and a chmod), their SHA-256 sums, and
# a krew manifest, dist/recbuf.yaml, filled in from hack/krew/recbuf.yaml.
#
#   hack/plugin-release.sh
#
# Environment: VERSION (default v0.0.0-dev; set by `make plugin-release`),
# PLATFORMS (default "linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
# windows/amd64"), RELEASE_URL (where the archives will be downloaded from,
# for the manifest; default the GitHub release of VERSION).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

version=${VERSION:-v0.0.0-dev}
platforms=${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64}
url=${RELEASE_URL:-https://github.com/recbuf/recbuf/releases/download/$version}
out=dist
rm -rf "$out" && mkdir -p "$out"

manifest=$(sed "s|@VERSION@|$version|g" hack/krew/recbuf.yaml)
platform_entries=""
for p in $platforms; do
  os=${p%/*} arch=${p#*/}
  exe=kubectl-recbuf
  [[ $os == windows ]] && exe=kubectl-recbuf.exe
  work=$(mktemp -d)
  echo "building kubectl-recbuf $version for $os/$arch"
  CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "-s -w" -o "$work/$exe" ./cmd/kubectl-recbuf
  cp "$work/$exe" "$out/kubectl-recbuf-$os-$arch${exe#kubectl-recbuf}"
  archive=kubectl-recbuf-$os-$arch.tar.gz
  tar -C "$work" -czf "$out/$archive" "$exe"
  rm -rf "$work"
  sum=$(sha256sum "$out/$archive" | cut -d' ' -f1)
  platform_entries+="  - selector:
      matchLabels:
        os: $os
        arch: $arch
    uri: $url/$archive
    sha256: $sum
    bin: $exe
    files:
    - from: $exe
      to: .
"
done
(cd "$out" && sha256sum kubectl-recbuf-* >SHA256SUMS)
printf '%s\n%s' "$manifest" "$platform_entries" >"$out/recbuf.yaml"
echo "wrote $out/: $(cd "$out" && ls | tr '\n' ' ')"

#!/usr/bin/env bash
# Builds the local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) and
# helm from this Go module through the Go module proxy; go.mod pins every version (pin.sh changes them). The
# binaries, the module cache and the build cache live outside the repository, under
# ${KUBESTACK_CACHE:-$HOME/.cache/kubestack}, so every clone on this machine (CI's fresh one too) reuses them.
# Does nothing when the binaries match go.mod, go.sum and the sources. Prints the directory of the binaries last.
#   usage: deploy/kube/build.sh [--print-bin-dir]    (the flag prints the directory without building)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${KUBESTACK_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/kubestack}
MIN_GO=1.26

pinned() { sed -n "s|^[[:space:]]*$1 v\([^ ]*\).*|\1|p" "$HERE/go.mod" | head -n 1; }
KUBE_VERSION=$(pinned k8s.io/kubernetes)
HELM_VERSION=$(pinned helm.sh/helm/v4)
if [ -z "$KUBE_VERSION" ] || [ -z "$HELM_VERSION" ]; then
  echo "k8s.io/kubernetes or helm.sh/helm/v4 missing from $HERE/go.mod" >&2; exit 1
fi
BIN=$CACHE/kube/v$KUBE_VERSION/bin
if [ "${1:-}" = "--print-bin-dir" ]; then echo "$BIN"; exit 0; fi

KUBE_MINOR=${KUBE_VERSION#*.}; KUBE_MINOR=${KUBE_MINOR%%.*}
KUBE_LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION \
-X k8s.io/component-base/version.gitMajor=${KUBE_VERSION%%.*} -X k8s.io/component-base/version.gitMinor=$KUBE_MINOR \
-X k8s.io/component-base/version.gitTreeState=clean"
HELM_LDFLAGS="-s -w -X helm.sh/helm/v4/internal/version.version=v$HELM_VERSION \
-X helm.sh/helm/v4/internal/version.metadata= -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
# binary name, Go package, ldflags
TARGETS=(
  "etcd ./cmd/etcd -s -w"
  "kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver $KUBE_LDFLAGS"
  "kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager $KUBE_LDFLAGS"
  "kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler $KUBE_LDFLAGS"
  "helm helm.sh/helm/v4/cmd/helm $HELM_LDFLAGS"
)

GO_FLAGS="-modcacherw -buildvcs=false"
build_key() {
  { cat "$HERE/go.mod" "$HERE/go.sum"; find "$HERE/cmd" -name '*.go' -print0 | sort -z | xargs -0 cat
    printf '%s\n' "$GO_FLAGS" "${TARGETS[@]}"; } | sha256sum | cut -d' ' -f1
}
KEY=$(build_key)

up_to_date() {
  [ "$(cat "$BIN/.build-key" 2>/dev/null)" = "$KEY" ] || return 1
  local target
  for target in "${TARGETS[@]}"; do [ -x "$BIN/${target%% *}" ] || return 1; done
}

if up_to_date; then echo "$BIN"; exit 0; fi

command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin   # Go's own installer puts it there
if ! command -v go >/dev/null 2>&1; then
  echo "Go not found: install Go $MIN_GO+ (https://go.dev/doc/install) to build the local Kubernetes API server" >&2
  exit 1
fi
GO_VERSION=$(go env GOVERSION); GO_VERSION=${GO_VERSION#go}
if [ "$(printf '%s\n%s\n' "$MIN_GO" "$GO_VERSION" | sort -V | head -n 1)" != "$MIN_GO" ]; then
  echo "Go $GO_VERSION is too old: Kubernetes $KUBE_VERSION needs Go $MIN_GO+" >&2; exit 1
fi

mkdir -p "$CACHE/kube"
exec 9>"$CACHE/kube/.build.lock"
flock 9   # another clone may be building the same binaries: wait for it, then find them up to date
if up_to_date; then echo "$BIN"; exit 0; fi

export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=$GO_FLAGS GOTOOLCHAIN=local CGO_ENABLED=0
STAGING=$BIN.partial
rm -rf "$STAGING"; mkdir -p "$STAGING"
echo "building the Kubernetes v$KUBE_VERSION control plane and helm v$HELM_VERSION into $BIN" \
  "(about 10 min on 2 cores the first time)" >&2
cd "$HERE"
start=$SECONDS
nice go mod download
echo "  modules: $((SECONDS - start))s" >&2
for target in "${TARGETS[@]}"; do
  read -r name package ldflags <<< "$target"
  step=$SECONDS
  nice go build -trimpath -ldflags "$ldflags" -o "$STAGING/$name" "$package"
  echo "  $name: $((SECONDS - step))s" >&2
done
echo "$KEY" > "$STAGING/.build-key"
rm -rf "$BIN"; mv "$STAGING" "$BIN"
echo "built in $((SECONDS - start))s" >&2
echo "$BIN"

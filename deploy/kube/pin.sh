#!/usr/bin/env bash
# Pins this module to one Kubernetes release, etcd and helm: k8s.io/kubernetes vX.Y.Z with one replace per staging
# module, each mapped to its published v0.Y.Z. The staging list comes from that release's own go.mod (its
# `k8s.io/... => ./staging/...` lines, which apply only inside the kubernetes repository: without ours a
# dependent sees "k8s.io/api@v0.0.0: unknown revision"). Then run build.sh (or make setup).
#   usage: deploy/kube/pin.sh 1.37.2 3.7.3 4.3.2    (kubernetes, etcd server, helm v4)
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 KUBERNETES_VERSION ETCD_VERSION HELM_VERSION (e.g. 1.37.2 3.7.3 4.3.2)" >&2; exit 2; }
KUBE=${1#v} ETCD=${2#v} HELM=${3#v}
CACHE=${KUBESTACK_CACHE:-$HOME/.cache/kubestack}
export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=-modcacherw GOTOOLCHAIN=local
cd "$(dirname "${BASH_SOURCE[0]}")"

UPSTREAM=$(go mod download -json "k8s.io/kubernetes@v$KUBE" | sed -n 's|^[[:space:]]*"GoMod": "\(.*\)",*$|\1|p')
STAGING=$(sed -n 's|^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|\1|p' "$UPSTREAM")
[ -n "$STAGING" ] || { echo "no staging modules found in $UPSTREAM" >&2; exit 1; }

for old in $(go mod edit -json | sed -n 's|^[[:space:]]*"Path": "\(k8s.io/[a-z0-9-]*\)",*$|\1|p' | sort -u); do
  go mod edit -dropreplace="$old" 2>/dev/null || true
done
for module in $STAGING; do
  go mod edit -replace="$module=$module@v0.${KUBE#1.}"
done
go get "k8s.io/kubernetes@v$KUBE" "go.etcd.io/etcd/server/v3@v$ETCD" "helm.sh/helm/v4@v$HELM"
go mod tidy
echo "pinned Kubernetes v$KUBE ($(echo "$STAGING" | wc -l) staging modules at v0.${KUBE#1.}), etcd v$ETCD, helm v$HELM"

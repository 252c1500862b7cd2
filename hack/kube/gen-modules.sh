#!/usr/bin/env bash
# Regenerates the pinned Go wrapper modules (go.mod/go.sum) from versions.env.
# k8s.io/kubernetes cannot be consumed with `go install`: its go.mod points every staging module
# (k8s.io/api, client-go, ...) at ./staging. Each wrapper module therefore repeats those replace lines,
# pointing them at the published v0.<minor>.<patch> tags instead.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

gen_kube_module() {
  local version="$1" minor="${1%.*}" dir="$here/k8s-${1%.*}"
  local staging_version="v0.${version#v1.}"
  local kube_mod
  kube_mod="$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  mkdir -p "$dir"
  {
    echo "module fleetflow.local/hack/kube/k8s-${minor}"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    echo "replace ("
    # Only staging modules that k8s.io/kubernetes actually requires (listed as v0.0.0).
    grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0( |$)' "$kube_mod" | awk '{print $1}' | sort -u |
      while read -r mod; do
        if grep -qE "^\s+$mod => \./staging/" "$kube_mod"; then
          printf '\t%s => %s %s\n' "$mod" "$mod" "$staging_version"
        fi
      done
    echo ")"
  } >"$dir/go.mod"
  (cd "$dir" && go get "k8s.io/kubernetes@$version" >/dev/null)
  if [[ "$minor" == "$KWOK_KUBE_MINOR" ]]; then
    (cd "$dir" && go get -tool "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION")
  fi
  if [[ "$minor" == "$HELM_KUBE_MINOR" ]]; then
    (cd "$dir" && go get -tool "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
  fi
  # go mod tidy keeps only what the module's packages import: the kube command must be in place.
  cp "$here"/cmd/kube/*.go "$dir/"
  (cd "$dir" && go mod tidy)
}

gen_etcd_module() {
  local dir="$here/etcd"
  mkdir -p "$dir"
  printf 'module fleetflow.local/hack/kube/etcd\n\ngo 1.26.0\n' >"$dir/go.mod"
  (cd "$dir" && go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION" && go mod tidy)
}

for version in $KUBE_VERSIONS; do
  gen_kube_module "$version"
done
gen_etcd_module

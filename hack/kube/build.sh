#!/usr/bin/env bash
# Builds the local Kubernetes toolchain into ${FLEETFLOW_TOOLS:-~/.cache/fleetflow/tools}, one directory
# per component and version (kube-v1.37.2/, kubectl-v1.37.2/, etcd-v3.6.16/, kwok-v0.8.0/, helm-v3.22.0/).
# Every output carries a .stamp of the inputs it was built from, so a second run only compares stamps.
# usage: hack/kube/build.sh [component ...]   components: etcd kwok helm kube-<version>; default all
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
tools="${FLEETFLOW_TOOLS:-$HOME/.cache/fleetflow/tools}"
mkdir -p "$tools"
# Never fetch another Go toolchain; the pinned modules declare go 1.26.0.
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -trimpath -buildvcs=false" CGO_ENABLED=0

# Progress goes to the terminal (fd 3); the Go tool's own output (module downloads, compiler messages)
# goes to build.log, which a failure names.
exec 3>&2
build_log="$tools/build.log"
log() { printf '[tools] %s\n' "$*" >&3; }
# Lines only the build log needs (a second run says nothing on the terminal).
note() { printf '[tools] %s\n' "$*" >&2; }

# The kube command's source (cmd/kube/*.go) is the same for every minor, but each minor is its own Go
# module, so each module gets git-ignored copies of it. A copy is rewritten only when it differs, and one
# whose source is gone is removed: the copies are part of inputs_hash, so an unchanged source keeps every
# stamp valid.
place_kube_sources() {
  local module source copy
  for module in "$here"/k8s-v*/; do
    for copy in "$module"*.go; do
      if [[ -e "$copy" && ! -e "$here/cmd/kube/$(basename "$copy")" ]]; then rm -f "$copy"; fi
    done
    for source in "$here"/cmd/kube/*.go; do
      copy="$module$(basename "$source")"
      cmp -s "$source" "$copy" || cp "$source" "$copy"
    done
  done
}

# Hash of everything that determines a build: the component's version plus its module's files.
inputs_hash() {
  local module_dir="$1"; shift
  { printf '%s\n' "$@"; go version; cat "$module_dir"/go.mod "$module_dir"/go.sum; cat "$module_dir"/*.go 2>/dev/null || true; } |
    sha256sum | cut -c1-16
}

up_to_date() {  # up_to_date <out_dir> <binary> <hash>
  [[ -x "$1/$2" && -f "$1/.stamp" && "$(cat "$1/.stamp")" == "$3" ]]
}

# go_build <module_dir> <out_dir> <binary> <package> <ldflags>: build to a temp name, then rename, so an
# interrupted build never leaves a half-written binary that looks finished.
go_build() {
  local module_dir="$1" out_dir="$2" binary="$3" package="$4" ldflags="$5"
  mkdir -p "$out_dir"
  local started=$SECONDS
  log "building $(basename "$out_dir")/$binary from $package"
  (cd "$module_dir" && go build -ldflags "-s -w $ldflags" -o "$out_dir/.$binary.tmp" "$package")
  mv -f "$out_dir/.$binary.tmp" "$out_dir/$binary"
  log "built $(basename "$out_dir")/$binary in $((SECONDS - started))s"
}

build_etcd() {
  local out="$tools/etcd-$ETCD_VERSION" hash
  hash="$(inputs_hash "$here/etcd" "$ETCD_VERSION")"
  up_to_date "$out" etcd "$hash" && { note "etcd-$ETCD_VERSION up to date"; return; }
  go_build "$here/etcd" "$out" etcd go.etcd.io/etcd/server/v3 ""
  echo "$hash" >"$out/.stamp"
}

build_kwok() {
  local module="$here/k8s-$KWOK_KUBE_MINOR" out="$tools/kwok-$KWOK_VERSION" hash
  hash="$(inputs_hash "$module" "$KWOK_VERSION")"
  if up_to_date "$out" kwok "$hash" && [[ -d "$out/stages" ]]; then
    note "kwok-$KWOK_VERSION up to date"; return
  fi
  go_build "$module" "$out" kwok sigs.k8s.io/kwok/cmd/kwok \
    "-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
  # The standalone kwok binary runs only the stages its config lists; ship kwok's own "fast" node and
  # pod stages (nodes Ready, pods Running, deleted pods removed) beside the binary.
  local source
  source="$(cd "$module" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage"
  rm -rf "$out/stages" && mkdir -p "$out/stages"
  local stage
  for stage in "$source"/node/fast/*.yaml "$source"/pod/fast/*.yaml; do
    if grep -q '^kind: Stage' "$stage"; then cp "$stage" "$out/stages/"; fi
  done
  echo "$hash" >"$out/.stamp"
}

build_helm() {
  local module="$here/k8s-$HELM_KUBE_MINOR" out="$tools/helm-$HELM_VERSION" hash
  hash="$(inputs_hash "$module" "$HELM_VERSION")"
  up_to_date "$out" helm "$hash" && { note "helm-$HELM_VERSION up to date"; return; }
  go_build "$module" "$out" helm helm.sh/helm/v3/cmd/helm \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  echo "$hash" >"$out/.stamp"
}

# Version-stamps both places /version and `kubectl version` read from.
kube_ldflags() {
  local version="$1" major minor build_date
  major="$(cut -d. -f1 <<<"${version#v}")"
  minor="$(cut -d. -f2 <<<"$version")"
  # The release's tag time (from the module proxy) keeps the build reproducible.
  build_date="$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"Time": "\(.*\)",*/\1/p')"
  local flags="" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitCommit=unknown -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
  done
  echo "$flags"
}

build_kube() {
  local version="$1" module="$here/k8s-${1%.*}" out="$tools/kube-$1" hash
  [[ -d "$module" ]] || { log "no module $module for $version (run gen-modules.sh)"; return 1; }
  hash="$(inputs_hash "$module" "$version")"
  if up_to_date "$out" kube "$hash"; then
    note "kube-$version up to date"
  else
    go_build "$module" "$out" kube . "$(kube_ldflags "$version")"
    echo "$hash" >"$out/.stamp"
  fi
  local name
  for name in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    ln -sfn kube "$out/$name"
  done
  mkdir -p "$tools/kubectl-$version"
  ln -sfn "../kube-$version/kube" "$tools/kubectl-$version/kubectl"
}

started=$SECONDS
# Before any hashing: kwok and helm are built in (and hashed over) the same modules as kube.
place_kube_sources
components=("$@")
if [[ ${#components[@]} -eq 0 ]]; then
  # Order: what a first cluster needs (etcd, kwok, the older minor) comes first.
  components=(etcd kwok)
  for version in $KUBE_VERSIONS; do components+=("kube-$version"); done
  components+=(helm)
fi

# component_inputs <component>: "<module dir> <output dir> <binary> <version>", as its build function hashes them.
component_inputs() {
  case "$1" in
    etcd) echo "$here/etcd $tools/etcd-$ETCD_VERSION etcd $ETCD_VERSION" ;;
    kwok) echo "$here/k8s-$KWOK_KUBE_MINOR $tools/kwok-$KWOK_VERSION kwok $KWOK_VERSION" ;;
    helm) echo "$here/k8s-$HELM_KUBE_MINOR $tools/helm-$HELM_VERSION helm $HELM_VERSION" ;;
    kube-v*) local version="${1#kube-}"; echo "$here/k8s-${version%.*} $tools/kube-$version kube $version" ;;
    *) echo "" ;;
  esac
}
# Minutes a cold build of each component takes on two cores (measured; see docs/benchmarks.md).
estimate_minutes() { case "$1" in etcd) echo 1 ;; kwok) echo 2 ;; helm) echo 1 ;; kube-v*) echo 8 ;; *) echo 1 ;; esac; }

current="(finding what to build)"
on_failure() {
  log "building $current failed after $((SECONDS - started))s; its output is in $build_log (last lines below)"
  tail -n 15 "$build_log" >&3 || true
  log "retry only this step: hack/kube/build.sh $current   (make tools retries everything not yet built)"
}
# On exit with an error (set -e), once, in this shell only: subshells do not inherit the trap.
trap 'status=$?; if [[ $status -ne 0 && $status -ne 2 ]]; then on_failure; fi' EXIT

pending=() minutes=0
for component in "${components[@]}"; do
  read -r module out binary version <<<"$(component_inputs "$component")"
  if [[ -z "$module" ]]; then log "unknown component $component"; exit 2; fi
  if ! up_to_date "$out" "$binary" "$(inputs_hash "$module" "$version")"; then
    pending+=("$component"); minutes=$((minutes + $(estimate_minutes "$component")))
  fi
done
if [[ ${#pending[@]} -gt 0 ]]; then
  log "first build: ${pending[*]} from source, once (about $minutes min on 2 cores; later runs take a second)"
  log "the Go tool's output goes to $build_log"
fi


done_count=0
for component in "${components[@]}"; do
  current="$component"
  if [[ " ${pending[*]} " == *" $component "* ]]; then
    done_count=$((done_count + 1))
    left=0
    for later in "${pending[@]:done_count}"; do left=$((left + $(estimate_minutes "$later"))); done
    log "[$done_count/${#pending[@]}] $component (elapsed $(((SECONDS - started) / 60))m$(((SECONDS - started) % 60))s; about $((left + $(estimate_minutes "$component"))) min left)"
  fi
  case "$component" in
    etcd) build_etcd 2>>"$build_log" ;;
    kwok) build_kwok 2>>"$build_log" ;;
    helm) build_helm 2>>"$build_log" ;;
    kube-v*) build_kube "${component#kube-}" 2>>"$build_log" ;;
  esac
done
trap - EXIT
if [[ ${#pending[@]} -gt 0 ]]; then log "tools ready in $tools ($((SECONDS - started))s)"; fi

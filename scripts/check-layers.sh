#!/usr/bin/env bash
# Layer check (DESIGN.md "Layers", docs/ARCHITECTURE.md): fails with file:line and the include when a lower layer
# includes a higher one. Run by ctest (test `layer_check`) and so by CI.
# Usage: scripts/check-layers.sh [ROOT]    (ROOT: the source tree to check, default: this script's repository)
#
# Layers, lowest first: core (core/eval and core/model inside it) < storage < proto, coordinator < worker < cli <
# bench, tests. What each may include (project headers; a quoted include without a folder is its own folder's):
#   core/        core/ only; torch (<torch/...>, <ATen/...>, <c10/...>) only under core/model/
#   storage/     core/, storage/; no torch, no gRPC
#   coordinator/ core/, storage/, proto-generated headers (cadenza/v1/..., grpc/health/...), gRPC, coordinator/;
#                no torch
#   worker/      anything but cli/, bench/, tests/
#   cli/         anything but bench/, tests/
#   bench/, tests/  anything (but nothing includes bench/ or tests/ from outside them)
# Nothing includes cli/ except cli/ and tests/.
set -uo pipefail

root=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
cd "$root" || { echo "check-layers: cannot enter $root" >&2; exit 2; }

# Known violations, one per line: "<file> <include>". Each names what removes it; remove the line with the include.
allowed=(
)

is_allowed() {
  local entry
  for entry in "${allowed[@]}"; do
    [[ "$entry" == "$1 $2" ]] && return 0
  done
  return 1
}

# Sets `target` to the layer an include refers to: a project folder, "proto" (generated), "grpc", "torch", or ""
# (anything else). No subshells: the check reads every #include of the tree.
target_layer() {
  local inc=$1 quoted=$2 dir=$3
  target=""
  case "$inc" in
    core/*|storage/*|coordinator/*|worker/*|cli/*|bench/*|tests/*) target=${inc%%/*}; return ;;
    cadenza/v1/*|grpc/health/*) if [[ $quoted == 1 ]]; then target=proto; return; fi ;;
  esac
  case "$inc" in
    grpcpp/*|grpc/*|grpc++/*) target=grpc; return ;;
    torch/*|ATen/*|c10/*) target=torch; return ;;
  esac
  if [[ $quoted == 1 && "$inc" != */* ]]; then target=$dir; fi  # "x.h" beside the file
}

# Sets `why` to the reason `file` (in layer `layer`) may not include `target`; empty when it may.
violation() {
  local file=$1 layer=$2 target=$3
  why=""
  [[ -z "$target" || "$target" == "$layer" ]] && return 0
  case "$layer" in
    core)
      if [[ "$target" == torch ]]; then
        [[ "$file" == core/model/* ]] || why="torch is included only under core/model/"
      else
        why="core/ may include only core/"
      fi ;;
    storage)
      [[ "$target" == core ]] || why="storage/ may include only core/ and storage/" ;;
    coordinator)
      case "$target" in core|storage|proto|grpc) ;; *) why="coordinator/ may include only core/, storage/, proto-generated headers, gRPC and coordinator/" ;; esac ;;
    worker)
      case "$target" in cli|bench|tests) why="worker/ may not include $target/" ;; esac ;;
    cli)
      case "$target" in bench|tests) why="cli/ may not include $target/" ;; esac ;;
    bench)
      [[ "$target" == cli ]] && why="nothing includes cli/ except cli/ and tests/" ;;
  esac
}

failures=0
stale=()
for entry in "${allowed[@]}"; do stale+=("$entry"); done

# One grep over the tree: "<file>:<line>:<text>" for every #include line of every layer but tests/ (which may include
# anything).
re='^[[:space:]]*#[[:space:]]*include[[:space:]]*(["<])([^">]+)[">]'
while IFS=: read -r file line text; do
  [[ "$text" =~ $re ]] || continue
  open=${BASH_REMATCH[1]}
  inc=${BASH_REMATCH[2]}
  quoted=0
  [[ "$open" == '"' ]] && quoted=1
  layer=${file%%/*}
  target_layer "$inc" "$quoted" "$layer"
  violation "$file" "$layer" "$target"
  [[ -z "$why" ]] && continue
  if is_allowed "$file" "$inc"; then
    for i in "${!stale[@]}"; do [[ "${stale[$i]}" == "$file $inc" ]] && unset 'stale[i]'; done
    continue
  fi
  close='"'
  [[ "$open" == '<' ]] && close='>'
  echo "$file:$line: #include $open$inc$close -- $why"
  failures=$((failures + 1))
done < <(grep -rn -E '^[[:space:]]*#[[:space:]]*include' core storage coordinator worker cli bench \
           --include='*.h' --include='*.hpp' --include='*.cc' --include='*.cpp' --include='*.inc' 2>/dev/null | sort -t: -k1,1 -k2,2n)

for entry in "${stale[@]}"; do
  echo "check-layers: note: allow-list entry '$entry' no longer matches an include: remove it from scripts/check-layers.sh" >&2
done
if (( failures > 0 )); then
  echo "check-layers: $failures include(s) break the layering (DESIGN.md \"Layers\", docs/ARCHITECTURE.md)" >&2
  exit 1
fi
echo "check-layers: ok (core < storage < proto, coordinator < worker < cli < bench, tests)"

#!/usr/bin/env bash
# The README's main job: installs dependencies, builds cadenza, runs `cadenza demo --sweep` (the study's default
# sweep on the synthetic corpus, with a live page while it runs and a report at the end).
# Usage: scripts/demo.sh [cadenza demo options, e.g. --data ../shared/data/nottingham/MIDI --out out/demo]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
# Spinning OpenMP threads collapse LibTorch throughput on a shared machine (PLATFORM.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
bash scripts/install-deps.sh
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target cadenza cadenza-worker  # the demo runs a local worker group
"$build/cli/cadenza" demo --sweep "$@"

#!/usr/bin/env bash
# The README's test command: installs dependencies, builds from scratch, fuzzes briefly, runs every test.
# Usage: scripts/test.sh            (env: BUILD_DIR=build, FUZZ_SECONDS=30, JOBS=nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
# Spinning OpenMP threads collapse LibTorch throughput on a shared machine (PLATFORM.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
jobs=${JOBS:-$(nproc)}

bash scripts/install-deps.sh
echo "== configure + build ($build, $jobs jobs)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
time cmake --build "$build" -j "$jobs"

echo "== fuzz (libFuzzer, ${FUZZ_SECONDS:-30} s per target)"
bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"

echo "== tests"
if [ ! -d ../shared/data ]; then
  echo "note: ../shared/data is absent: corpus tests will be skipped"
fi
cd "$build"
ctest --output-on-failure -j "$jobs" --timeout 1200

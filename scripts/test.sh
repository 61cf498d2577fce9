#!/usr/bin/env bash
# The README's test command: installs dependencies, builds from scratch, fuzzes briefly, runs every test.
# Usage: scripts/test.sh            (env: BUILD_DIR=build, FUZZ_SECONDS=30, JOBS=nproc)
#        scripts/test.sh --sanitize [REGEX]
#          AddressSanitizer + UndefinedBehaviorSanitizer build in its own folder (BUILD_DIR, default
#          build-sanitize; benchmarks off), no fuzzing, then the tests (those whose name matches REGEX, if given:
#          e.g. 'Midi|Tokenizer|Dataset|Training|Resume'). Any UB or memory error fails the test that hit it
#          (-fno-sanitize-recover, halt_on_error); leak checking is off (LibTorch, gRPC and Open MPI keep
#          allocations until exit). Build targets: SANITIZE_TARGETS (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
sanitize=0
regex=""
if [ "${1:-}" = "--sanitize" ]; then
  sanitize=1
  regex=${2:-}
fi
build=${BUILD_DIR:-$([ $sanitize = 1 ] && echo build-sanitize || echo build)}
# Spinning OpenMP threads collapse LibTorch throughput on a shared machine (PLATFORM.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
jobs=${JOBS:-$(nproc)}

bash scripts/install-deps.sh
echo "== configure + build ($build, $jobs jobs$([ $sanitize = 1 ] && echo ', ASan + UBSan'))"
if [ $sanitize = 1 ]; then
  san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCADENZA_BUILD_BENCH=OFF -DCADENZA_UNITY_BUILD=ON \
    -DCMAKE_C_FLAGS="$san" -DCMAKE_CXX_FLAGS="$san" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
  # shellcheck disable=SC2086
  time cmake --build "$build" -j "$jobs" ${SANITIZE_TARGETS:+--target $SANITIZE_TARGETS}
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1:abort_on_error=1:strict_string_checks=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  # Sanitized training runs 2-3x slower: tests that wait for whole jobs wait this many times longer.
  export CADENZA_TEST_TIME_SCALE=${CADENZA_TEST_TIME_SCALE:-4}
else
  # -g1 (line tables: backtraces keep file:line) instead of -g: full debug info costs ~12% of compile time.
  # Unity batches: about half the compile time of a build from scratch (CMakeLists.txt, CADENZA_UNITY_BUILD).
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCADENZA_UNITY_BUILD=ON \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" >/dev/null
  time cmake --build "$build" -j "$jobs"

  echo "== fuzz (libFuzzer, ${FUZZ_SECONDS:-30} s per target)"
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi

echo "== tests"
if [ ! -d ../shared/data ]; then
  echo "note: ../shared/data is absent: corpus tests will be skipped"
fi
cd "$build"
ctest --output-on-failure -j "$jobs" --timeout 1200 ${regex:+-R "$regex"}

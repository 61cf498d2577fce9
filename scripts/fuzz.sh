#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a fixed time from code-generated seeds.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
build=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCADENZA_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"
work="$build/corpus"
rm -rf "$work" && mkdir -p "$work"
"$build/tests/fuzz/make_fuzz_seeds" "$work/midi" "$work/tokens"
for target in midi_reader_fuzz:midi tokenizer_fuzz:tokens; do
  name=${target%%:*}; seeds=${target##*:}
  echo "fuzz: $name for ${seconds}s"
  # -timeout catches hangs: any input taking over 5 s is a failure.
  rc=0
  "$build/tests/fuzz/$name" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/$name-" "$work/$seeds" >"$build/$name.log" 2>&1 || rc=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done)|ERROR|SUMMARY" "$build/$name.log" || true
  if [ "$rc" -ne 0 ]; then
    tail -40 "$build/$name.log"
    echo "fuzz: $name FAILED (crash input saved as $build/$name-*)"
    exit 1
  fi
done
echo "fuzz: all targets ran clean"

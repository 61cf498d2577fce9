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
# The targets run side by side (one core each): CI's test command has two cores and a time limit.
run_target() {
  local name=$1 seeds=$2 rc=0
  # -timeout catches hangs: any input taking over 5 s is a failure.
  "$build/tests/fuzz/$name" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/$name-" "$work/$seeds" >"$build/$name.log" 2>&1 || rc=$?
  echo "$rc" >"$build/$name.rc"
}
targets="midi_reader_fuzz:midi tokenizer_fuzz:tokens"
for target in $targets; do
  echo "fuzz: ${target%%:*} for ${seconds}s"
  run_target "${target%%:*}" "${target##*:}" &
done
wait
failed=0
for target in $targets; do
  name=${target%%:*}
  echo "fuzz: $name"
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done)|ERROR|SUMMARY" "$build/$name.log" || true
  if [ "$(cat "$build/$name.rc")" -ne 0 ]; then
    tail -40 "$build/$name.log"
    echo "fuzz: $name FAILED (crash input saved as $build/$name-*)"
    failed=1
  fi
done
[ "$failed" = 0 ] || exit 1
echo "fuzz: all targets ran clean"

#!/usr/bin/env bash
# Builds the lab spec fuzz target with clang (libFuzzer + ASan + UBSan) and
# runs it for SECONDS (default 30) from the committed corpus. Fails on a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_BUDGET=${1:-30}
OUT=build/fuzz
mkdir -p "$OUT/corpus"
cp tests/fuzz/corpus/* "$OUT/corpus/"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc \
  tests/fuzz/labspec_fuzz.cpp src/core/*.cpp -lsodium -o "$OUT/fuzz_labspec"  # -lsodium: core/git_push's HMAC
echo "ads: fuzzing the lab spec parsers for ${SECONDS_BUDGET} s"
cd "$OUT"
./fuzz_labspec -max_total_time="$SECONDS_BUDGET" -max_len=4096 -print_final_stats=1 corpus 2>fuzz.log || {
  tail -40 fuzz.log; echo "ads: the fuzzer found a crash (see build/fuzz/crash-*)"; exit 1; }
grep -E 'stat::number_of_executed_units' fuzz.log || true
echo "ads: fuzzing found no crash"

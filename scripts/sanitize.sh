#!/usr/bin/env bash
# Builds and runs the unit tests under a sanitizer, in a build directory of its
# own (docs/testing.md, "Sanitizers"):
#   bash scripts/sanitize.sh asan [GTEST_ARGS...]  # the whole unit suite under
#                                                  # AddressSanitizer + UBSan (build-asan/)
#   bash scripts/sanitize.sh tsan [GTEST_ARGS...]  # the engine and store unit tests
#                                                  # under ThreadSanitizer (build-tsan/,
#                                                  # ads_tsan_tests: only what they link)
# The test binary runs once, all its tests in one process (through ctest each
# test would be a process of its own: 1.5 s to start a sanitized binary, 20
# minutes for the 779 unit tests), bounded by `timeout`; the first finding
# ends the run. The build and the run print their seconds. The tsan build
# compiles only the engine and store tests and what they link (108 files,
# about 1 minute with a warm ccache, half an hour cold); its run takes 8-15
# minutes on two cores.
# The runtimes' options (halt on the first finding, leaks on, the third-party
# suppressions in tests/sanitizers/*.supp) are compiled into the binaries
# (tests/sanitizers/default_options.cpp): nothing to set by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-}
case "$kind" in
  asan) sanitizers=address,undefined; target=ads_unit_tests; bound=5400 ;;
  tsan) sanitizers=thread; target=ads_tsan_tests; bound=2400 ;;
  *) echo "usage: $0 asan|tsan [gtest arguments]" >&2; exit 2 ;;
esac
shift
dir=build-$kind
LAUNCHER=()
if command -v ccache >/dev/null; then
  # shared with scripts/build.sh's settings (see there)
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(cd .. && pwd)}
  export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
echo "ads: building $target with -fsanitize=$sanitizers into $dir"
start=$(date +%s)
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DADS_SANITIZE="$sanitizers" -DADS_WERROR=OFF "${LAUNCHER[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)" --target "$target"
echo "ads: $dir built in $(( $(date +%s) - start )) s"
start=$(date +%s)
status=0
# bounded: a hung test ends the run instead of the CI job
timeout --kill-after=30 "$bound" "$dir/tests/$target" "$@" || status=$?
echo "ads: $kind tests ran in $(( $(date +%s) - start )) s (status $status)"
exit "$status"

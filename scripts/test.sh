#!/usr/bin/env bash
# Runs every test (docs/testing.md): installs what is needed, builds, prepares
# LXD and the base images (cached after the first run), fuzzes the spec
# parsers, then runs two lanes side by side and prints how long each part took:
#   lane 1: the integration, end-to-end (web UI in chromium) and script tests
#           (ctest -LE unit) on the plain build, which mostly wait on LXD,
#           caddy and chromium; then the engine and store unit tests under
#           ThreadSanitizer;
#   lane 2: the coding standard (clang-tidy over the tree), then the whole unit
#           suite under AddressSanitizer + UBSan (instead of a plain run: the
#           same tests, with every memory error and undefined behaviour caught).
# The sanitizer and tidy parts write their output to build/test-logs/NAME.log
# (what failed is printed at the end), with a line here when each part starts
# and ends; ctest's output comes here as it runs.
#   bash scripts/test.sh                 # everything: what CI runs
#   bash scripts/test.sh -R Lifecycle    # set-up, then only `ctest ARGS` on the plain build
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "ads: installing the e2e test's npm packages (tests/e2e/package-lock.json)"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
echo "ads: building"
bash scripts/build.sh
bash scripts/lxd-host.sh
bash scripts/build-image.sh
bash scripts/build-image.sh --variant build  # playbook labs (tests/integration/ansible_lab_test.cpp)
bash scripts/fuzz.sh 30
if [ "$#" -gt 0 ]; then
  cd build
  exec ctest --output-on-failure --timeout 900 "$@"
fi

logs=build/test-logs
rm -rf "$logs"
mkdir -p "$logs"
# record NAME STATUS START: writes "NAME passed|FAILED SECONDS" to
# $logs/NAME.result and says it here.
record() {
  local took=$(($(date +%s) - $3)) result=passed
  [ "$2" -eq 0 ] || result="FAILED (exit $2)"
  echo "$1 $result ${took}" >"$logs/$1.result"
  echo "ads: [$1] $result in ${took} s"
}
# part NAME CMD...: runs CMD with its output in $logs/NAME.log, then records it.
part() {
  local name=$1 start status=0 owner=$BASHPID
  shift
  start=$(date +%s)
  echo "ads: [$name] started ($(date +%T)); output in $logs/$name.log"
  # progress: every 2 minutes, how long it has run and its log's last line;
  # it also stops by itself once the shell that started it is gone
  (while sleep 120 && kill -0 "$owner" 2>/dev/null; do
    echo "ads: [$name] $(($(date +%s) - start)) s: $(tail -n 1 "$logs/$name.log" 2>/dev/null | cut -c1-120)"
  done) &
  local ticker=$!
  "$@" >"$logs/$name.log" 2>&1 || status=$?
  kill "$ticker" 2>/dev/null || true
  record "$name" "$status" "$start"
}
lane2() {
  part clang-tidy bash scripts/tidy.sh
  part unit-asan bash scripts/sanitize.sh asan
}
set -m  # lane 2 in a process group of its own, so that an early exit can stop all of it
lane2 &
lane2_pid=$!
set +m
trap 'kill -- "-$lane2_pid" 2>/dev/null || true' EXIT
start=$(date +%s)
status=0
(cd build && ctest --output-on-failure --timeout 900 -LE unit) || status=$?
record ctest-LE-unit "$status" "$start"
echo "ads: e2e screenshots (if the e2e tests ran): $(pwd)/build/e2e-screenshots"
part engine-store-tsan bash scripts/sanitize.sh tsan
echo "ads: waiting for lane 2 (clang-tidy, the unit suite under ASan)"
wait "$lane2_pid" || true
trap - EXIT

echo "ads: summary (seconds)"
failed=0
for name in ctest-LE-unit clang-tidy unit-asan engine-store-tsan; do
  if [ ! -f "$logs/$name.result" ]; then
    echo "  $name: did not run"
    failed=1
    continue
  fi
  read -r _ rest <"$logs/$name.result"
  echo "  $name: $rest s"
  case "$rest" in passed*) ;; *) failed=1 ;; esac
done
for name in clang-tidy unit-asan engine-store-tsan; do
  if [ -f "$logs/$name.result" ] && ! grep -q " passed " "$logs/$name.result"; then
    echo "ads: ---- $name failed; its findings and the end of $logs/$name.log ----"
    grep -E -m 50 'error:|FAILED|ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer|LeakSanitizer' \
      "$logs/$name.log" || true
    # googletest's failed checks with what they saw (the last 150 lines may
    # hold only the tests that ran after them)
    echo "ads: ---- failed checks ----"
    grep -E -A 8 -m 20 ': Failure$' "$logs/$name.log" || true
    echo "ads: ---- last 150 lines ----"
    tail -n 150 "$logs/$name.log"
  fi
done
exit "$failed"

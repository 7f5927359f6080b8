#!/usr/bin/env bash
# scripts/tidy.sh (clang-tidy with .clang-tidy, docs/testing.md "Coding
# standard") on a throwaway repository of two tiny translation units, with a
# compile_commands.json and dependency files laid out as CMake's Makefile
# generator writes them: it fails on a planted finding and names the check, a
# translation unit with a finding is checked again on every run (never taken
# from the cache), a clean one is taken from the cache on the second run and
# from a clone at another path, and a change to an included header is seen
# through the cache. The tree itself is checked by scripts/tidy.sh (too long
# for a ctest: minutes without the cache).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export ADS_TIDY_CACHE="$tmp/cache"
unset BUILD_DIR
fail() { echo "FAIL: $1" >&2; [ -f "$tmp/out" ] && cat "$tmp/out" >&2; exit 1; }

# make_repo DIR: the two sources, the compile commands and the "build's"
# dependency files (written after the sources: newer, as a build leaves them)
make_repo() {
  local r=$1
  mkdir -p "$r/scripts" "$r/src" "$r/build/CMakeFiles/t.dir/src"
  cp "$root/scripts/tidy.sh" "$r/scripts/"
  cp "$root/.clang-tidy" "$r/"
  printf 'inline int twice(int x) { return 2 * x; }\n' >"$r/src/good.h"
  printf '#include "good.h"\nint good(int x) { return twice(x); }\n' >"$r/src/good.cpp"
  # misc-redundant-expression: both sides of the - are the same
  printf 'int bad(int x) { return x - x; }\n' >"$r/src/bad.cpp"
  local entries=() f
  for f in good bad; do
    entries+=("{\"directory\": \"$r/build\", \"file\": \"$r/src/$f.cpp\", \"command\": \"/usr/bin/c++ -I$r/src -DSRC=\\\"$r\\\" -Wall -std=gnu++20 -o CMakeFiles/t.dir/src/$f.cpp.o -c $r/src/$f.cpp\"}")
  done
  (IFS=,; printf '[%s]\n' "${entries[*]}") >"$r/build/compile_commands.json"
  printf 'CMakeFiles/t.dir/src/good.cpp.o: ../src/good.cpp \\\n ../src/good.h\n' >"$r/build/CMakeFiles/t.dir/src/good.cpp.o.d"
  printf 'CMakeFiles/t.dir/src/bad.cpp.o: ../src/bad.cpp\n' >"$r/build/CMakeFiles/t.dir/src/bad.cpp.o.d"
}
tidy() { bash "$1/scripts/tidy.sh" "${@:2}" >"$tmp/out" 2>&1; }
summary() { grep -q "$1" "$tmp/out" || fail "expected '$1' in the summary"; }

make_repo "$tmp/repo"
for run in 1 2; do
  if tidy "$tmp/repo"; then fail "run $run passed a file with a finding"; fi
  grep -q 'src/bad.cpp:1:.*\[misc-redundant-expression' "$tmp/out" || fail "run $run did not name the finding"
  if grep -q 'src/good' "$tmp/out"; then fail "run $run named the clean file"; fi
done
summary "2 translation units, 1 checked, 1 from the cache"  # run 2: bad.cpp checked again

rm "$tmp/repo/src/bad.cpp"
sed -i 's/,{[^}]*bad.cpp"}//' "$tmp/repo/build/compile_commands.json"
tidy "$tmp/repo" || fail "a clean repository failed"
summary "1 translation units, 0 checked, 1 from the cache"
tidy "$tmp/repo" --no-cache || fail "a clean repository failed without the cache"
summary "1 translation units, 1 checked, no cache"

# the same sources at another path share the entry (paths in the key are relative)
make_repo "$tmp/clone"
tidy "$tmp/clone" src/good.cpp || fail "a clean clone failed"
summary "1 translation units, 0 checked, 1 from the cache"

# a header changes and the build runs again (a fresh dependency file): the new
# header's finding is seen, not hidden by the cached result of the old one
printf 'inline int twice(int x) { return x - x; }\n' >"$tmp/repo/src/good.h"
touch -d '1 minute ago' "$tmp/repo/src/good.h"
if tidy "$tmp/repo"; then fail "a finding in a changed header was hidden by the cache"; fi
grep -q 'src/good.h:1:.*\[misc-redundant-expression' "$tmp/out" || fail "the header's finding was not named"
summary "1 translation units, 1 checked, 0 from the cache"
echo "ok: scripts/tidy.sh fails on a finding, names its check, caches only clean results"

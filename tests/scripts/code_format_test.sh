#!/usr/bin/env bash
# Every C++ file matches the house style (.clang-format). First the check is
# shown to fail on a badly formatted file in a throwaway repository (so it
# cannot pass by checking nothing), then to pass there once formatted, then it
# runs on this repository.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/repo/scripts" "$tmp/repo/src"
cp "$root/scripts/format.sh" "$tmp/repo/scripts/"
cp "$root/.clang-format" "$tmp/repo/"
printf 'int  f( int x ){return x+1;}\n' >"$tmp/repo/src/bad.cpp"
printf 'int g(int x) { return x + 1; }\n' >"$tmp/repo/src/good.cpp"
git -C "$tmp/repo" init -q && git -C "$tmp/repo" add -A
if bash "$tmp/repo/scripts/format.sh" --check >"$tmp/out" 2>&1; then
  echo "FAIL: the check passed a badly formatted file:" >&2; cat "$tmp/out" >&2; exit 1
fi
grep -q "src/bad.cpp" "$tmp/out" || { echo "FAIL: the check did not name src/bad.cpp:" >&2; cat "$tmp/out" >&2; exit 1; }
if grep -q "src/good.cpp" "$tmp/out"; then
  echo "FAIL: the check named a well formatted file:" >&2; cat "$tmp/out" >&2; exit 1
fi
bash "$tmp/repo/scripts/format.sh" >/dev/null
bash "$tmp/repo/scripts/format.sh" --check >/dev/null || { echo "FAIL: still unformatted after format.sh" >&2; exit 1; }

bash "$root/scripts/format.sh" --check

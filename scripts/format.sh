#!/usr/bin/env bash
# Formats every C++ file of the repository with clang-format and the
# repository's .clang-format (the house style), or, with --check, lists the
# files that do not match and exits 1 (tests/scripts/code_format_test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT="${CLANG_FORMAT:-clang-format}"
command -v "$CLANG_FORMAT" >/dev/null || { echo "ads: $CLANG_FORMAT not found; run scripts/install-deps.sh" >&2; exit 2; }
mapfile -t files < <(git ls-files -- '*.cpp' '*.h')
if [ "${1:-}" = "--check" ]; then
  bad=()
  for f in "${files[@]}"; do
    "$CLANG_FORMAT" --style=file --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if ((${#bad[@]})); then
    echo "ads: ${#bad[@]} file(s) do not match .clang-format (fix: bash scripts/format.sh):" >&2
    printf '  %s\n' "${bad[@]}" >&2
    exit 1
  fi
  echo "ads: ${#files[@]} C++ files match .clang-format"
else
  "$CLANG_FORMAT" --style=file -i "${files[@]}"
  echo "ads: formatted ${#files[@]} C++ files"
fi

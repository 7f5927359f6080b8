#!/usr/bin/env bash
# Every code block in README.md and docs/ is marked as an example or names the
# test that checks it (scripts/check-doc-blocks.sh). First the checker is shown
# to catch what it must (so it cannot pass by checking nothing), on small
# made-up doc trees; then it runs on this repository.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
check="$root/scripts/check-doc-blocks.sh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fails=0
expect() {  # expect pass|fail NAME: run the checker on $tmp/NAME
  local want="$1" name="$2" got=pass
  bash "$check" "$tmp/$name" >"$tmp/$name.out" 2>&1 || got=fail
  if [ "$got" != "$want" ]; then
    echo "FAIL: $name: the checker said $got, expected $want:" >&2
    cat "$tmp/$name.out" >&2
    fails=1
  fi
}
tree() {  # tree NAME FILE CONTENT: a doc tree with one file
  mkdir -p "$tmp/$1/$(dirname "$2")"
  printf '%s\n' "$3" >"$tmp/$1/$2"
}

tree unmarked docs/a.md $'# A\n\nText.\n\n```sh\nrm -rf /\n```'
expect fail unmarked
tree unmarked-readme README.md $'# R\n\n```\nx\n```'
expect fail unmarked-readme
tree marked docs/a.md $'# A\n\n<!-- example -->\n```sh\nls\n```\n\n```sh example\nls\n```'
expect pass marked
tree marker-too-far docs/a.md $'<!-- example -->\nA paragraph between.\n```sh\nls\n```'
expect fail marker-too-far
tree marker-once docs/a.md $'<!-- example -->\n```sh\nls\n```\n```sh\nls\n```'
expect fail marker-once
tree nested docs/x/y.md $'- item\n\n  ```json\n  {}\n  ```'
expect fail nested
tree unclosed docs/a.md $'<!-- example -->\n```sh\nls'
expect fail unclosed
tree tildes docs/a.md $'~~~\ncode\n~~~'
expect fail tildes
tree tested-missing docs/a.md $'<!-- tested: tests/nope.sh -->\n```\nx\n```'
expect fail tested-missing
mkdir -p "$tmp/tested-unrelated/tests" && echo "# checks nothing" >"$tmp/tested-unrelated/tests/t.sh"
tree tested-unrelated docs/a.md $'<!-- tested: tests/t.sh -->\n```\nx\n```'
expect fail tested-unrelated
mkdir -p "$tmp/tested-ok/tests" && echo "# checks docs/a.md" >"$tmp/tested-ok/tests/t.sh"
tree tested-ok docs/a.md $'<!-- tested: tests/t.sh -->\n```\nx\n```'
expect pass tested-ok
tree inline docs/a.md $'Use `ls` and ``x``; no block here.'
expect pass inline
mkdir -p "$tmp/empty"
expect fail empty

[ "$fails" -eq 0 ] || exit 1
echo "ok: the checker catches unmarked, unclosed and wrongly claimed blocks"

bash "$check" "$root"

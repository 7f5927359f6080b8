#!/usr/bin/env bash
# Every relative link in README.md and docs/ leads to a file that exists and,
# with a #fragment, to a heading of that page (scripts/check-doc-links.py).
# First the checker is shown to catch broken links on small made-up doc trees
# (so it cannot pass by checking nothing); then it runs on this repository.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
check="$root/scripts/check-doc-links.py"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fails=0
expect() {  # expect pass|fail NAME
  local want="$1" name="$2" got=pass
  python3 "$check" "$tmp/$name" >"$tmp/$name.out" 2>&1 || got=fail
  if [ "$got" != "$want" ]; then
    echo "FAIL: $name: the checker said $got, expected $want:" >&2
    cat "$tmp/$name.out" >&2
    fails=1
  fi
}
page() {  # page TREE FILE CONTENT
  mkdir -p "$tmp/$1/$(dirname "$2")"
  printf '%s\n' "$3" >"$tmp/$1/$2"
}

page good README.md $'# R\n\nSee [the guide](docs/a/guide.md#two-words) and [b](docs/b.md), [web](https://example.org/x).'
page good docs/a/guide.md $'# Guide\n\n## Two words\n\nBack to [the index](../b.md#b).'
page good docs/b.md $'# B'
expect pass good
page missing README.md $'[gone](docs/gone.md)'
expect fail missing
page wrong-dir docs/a/x.md $'[b](b.md)'
page wrong-dir docs/b.md $'# B'
expect fail wrong-dir
page anchor README.md $'[g](docs/g.md#no-such-heading)'
page anchor docs/g.md $'# G\n\n## Some heading'
expect fail anchor
page anchor-in-code README.md $'[g](docs/g.md#only-in-code)'
page anchor-in-code docs/g.md $'# G\n\n```\n## only in code\n```'
expect fail anchor-in-code
page self README.md $'# Top\n\n[up](#top) [down](#nowhere)'
expect fail self
page code-ignored README.md $'# R\n\n`[not a link](nowhere.md)`\n\n```\n[nor this](nowhere.md)\n```'
expect pass code-ignored
mkdir -p "$tmp/empty"
expect fail empty

[ "$fails" -eq 0 ] || exit 1
echo "ok: the checker catches missing files and headings"

python3 "$check" "$root"

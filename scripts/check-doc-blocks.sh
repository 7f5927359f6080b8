#!/usr/bin/env bash
# Every fenced code block in README.md and docs/ must say what it is:
#  - an example no test runs: the line `<!-- example -->` right before the
#    fence (blank lines between are allowed), or `example` in the fence's info
#    string (```sh example);
#  - a block a test checks: the line `<!-- tested: PATH -->` right before the
#    fence, where PATH is a test file in this repository that names the doc
#    file (so the claim can be followed, and breaks if the test goes away).
# Prints each unmarked block as FILE:LINE and exits 1; exits 0 when all are
# marked.   bash scripts/check-doc-blocks.sh [REPO_ROOT]
set -euo pipefail
root="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
cd "$root"
files=()
[ -f README.md ] && files+=(README.md)
if [ -d docs ]; then
  while IFS= read -r f; do files+=("$f"); done < <(find docs -name '*.md' -type f | LC_ALL=C sort)
fi
[ ${#files[@]} -gt 0 ] || { echo "check-doc-blocks: no README.md or docs/*.md under $root" >&2; exit 1; }

bad=0
blocks=0
for f in "${files[@]}"; do
  # one line per block: LINE<TAB>OK|UNMARKED|UNCLOSED|TESTED:PATH
  while IFS=$'\t' read -r line verdict; do
    blocks=$((blocks + 1))
    case "$verdict" in
      OK) ;;
      TESTED:*)
        t="${verdict#TESTED:}"
        if [ ! -f "$t" ]; then
          echo "$f:$line: marked tested by $t, which does not exist" >&2; bad=1
        elif ! grep -qF "$f" "$t"; then
          echo "$f:$line: marked tested by $t, which does not name $f" >&2; bad=1
        fi ;;
      UNCLOSED) echo "$f:$line: code block never closed" >&2; bad=1 ;;
      *) echo "$f:$line: code block neither marked <!-- example --> nor <!-- tested: TEST -->" >&2; bad=1 ;;
    esac
  done < <(awk '
    {
      line = $0
      if (!infence) {
        if (match(line, /^[ \t]*(```+|~~~+)/)) {
          fence = substr(line, RSTART, RLENGTH); sub(/^[ \t]*/, "", fence)
          info = substr(line, RSTART + RLENGTH)
          infence = 1; start = NR
          if (info ~ /(^|[ \t])example([ \t]|$)/ || marker == "example") v = "OK"
          else if (marker ~ /^tested:/) v = "TESTED:" substr(marker, 8)
          else v = "UNMARKED"
          print start "\t" v
          marker = ""
          next
        }
        if (line ~ /^[ \t]*<!-- example -->[ \t]*$/) { marker = "example"; next }
        if (line ~ /^[ \t]*<!-- tested: [^ ]+ -->[ \t]*$/) {
          m = line; sub(/^[ \t]*<!-- tested: /, "", m); sub(/ -->[ \t]*$/, "", m)
          marker = "tested:" m; next
        }
        if (line !~ /^[ \t]*$/) marker = ""
      } else {
        closing = line; sub(/^[ \t]*/, "", closing); sub(/[ \t]*$/, "", closing)
        if (substr(closing, 1, 1) == substr(fence, 1, 1) && closing ~ /^(```+|~~~+)$/ && length(closing) >= length(fence)) infence = 0
      }
    }
    END { if (infence) print start "\tUNCLOSED" }
  ' "$f")
done
if [ "$bad" -ne 0 ]; then
  echo "check-doc-blocks: unmarked code blocks (see above); mark each <!-- example --> unless a test runs it" >&2
  exit 1
fi
echo "check-doc-blocks: $blocks code blocks in ${#files[@]} files, all marked"

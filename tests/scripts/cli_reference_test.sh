#!/usr/bin/env bash
# docs/reference/cli.md is what scripts/cli-reference.sh makes from the built
# `ads` binary's help: regenerate it into a temp file and fail on any
# difference (a command or option added, renamed or described otherwise
# without `bash scripts/cli-reference.sh` run and its output committed).
# Also fails when the generator finds no commands, so an empty or broken
# binary cannot pass by producing an empty file twice.
# ctest sets ADS_BIN to the built binary; by hand: ADS_BIN=build/ads bash THIS.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${ADS_BIN:-$root/build/ads}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

bash "$root/scripts/cli-reference.sh" "$bin" "$tmp/cli.md" >/dev/null

# every command the binary has is in it (the top-level list and nested ones)
sections=$(grep -c '^## ads' "$tmp/cli.md" || true)
for cmd in "ads" "ads serve" "ads deploy" "ads users add" "ads tokens create" "ads service"; do
  if ! grep -qx "## $cmd" "$tmp/cli.md"; then
    echo "FAIL: the generated reference has no section for '$cmd' ($sections sections)" >&2
    exit 1
  fi
done

if ! diff -u "$root/docs/reference/cli.md" "$tmp/cli.md"; then
  echo "FAIL: docs/reference/cli.md differs from the ads binary's help (above: - committed, + binary)." >&2
  echo "      Run: bash scripts/cli-reference.sh   and commit docs/reference/cli.md" >&2
  exit 1
fi
echo "ok: docs/reference/cli.md matches the ads binary's help ($sections commands)"

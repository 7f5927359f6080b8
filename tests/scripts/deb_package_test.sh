#!/usr/bin/env bash
# The Debian package, as an operator gets it: built from the tree
# (cpack -G DEB in the build directory), installed on this machine with
# `apt-get install ./ads_*.deb`, `ads serve` run from it (it finds its agent
# beside it, answers the health check, serves the web UI and the OpenAPI
# document), then removed. Also checked: the binaries are stripped, the
# systemd unit starts /usr/bin/ads, the package declares the libraries it
# links (dpkg-shlibdeps) and holds the scripts and docs.
# Env: ADS_BUILD_DIR (set by ctest). Root. Leaves nothing installed.
set -euo pipefail
BUILD=${ADS_BUILD_DIR:?ADS_BUILD_DIR is not set}
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ -e /usr/bin/ads ] && ! dpkg -S /usr/bin/ads >/dev/null 2>&1; then
  fail "/usr/bin/ads exists and is no package's: not overwriting it"
fi
work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  DEBIAN_FRONTEND=noninteractive apt-get remove -y ads >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "building the package (cpack)"
(cd "$BUILD" && cpack -G DEB -B "$work/pkg") >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; fail "cpack failed"; }
deb=$(ls "$work"/pkg/ads_*.deb)
echo "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libgit2 libcurl libsqlite3 libpqxx libarchive libsodium libssh; do
  grep -q "$lib" <<<"$depends" || fail "Depends does not name $lib: $depends"
done
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/ads ./usr/bin/ads-agent ./usr/lib/systemd/system/ads.service ./usr/share/ads/scripts/build-image.sh \
         ./usr/share/ads/scripts/lxd-host.sh ./usr/share/doc/ads/README.md ./usr/share/doc/ads/docs/openapi.json; do
  grep -q " $f\$" <<<"$contents" || fail "the package lacks $f"
done

echo "installing it with apt-get"
DEBIAN_FRONTEND=noninteractive apt-get install -y "$deb" >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; fail "apt-get install failed"; }
file -L /usr/bin/ads | grep -q ", stripped" || fail "/usr/bin/ads is not stripped: $(file -L /usr/bin/ads)"
grep -q "^ExecStart=/usr/bin/ads serve " /usr/lib/systemd/system/ads.service || fail "the unit does not start /usr/bin/ads"

echo "running ads serve from the package"
data="$work/data"
/usr/bin/ads serve --data-dir "$data" --listen 127.0.0.1:0 --proxy off >"$work/serve.log" 2>&1 &
pid=$!
base=
for _ in $(seq 1 300); do
  base=$(grep -o 'listening on http://[0-9.:]*' "$work/serve.log" | head -1 | cut -d' ' -f3) || true
  [ -n "$base" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log"; fail "ads serve exited"; }
  sleep 0.1
done
[ -n "$base" ] || { cat "$work/serve.log"; fail "ads serve did not start listening"; }
grep -q "agent /usr/bin/ads-agent" "$work/serve.log" || { cat "$work/serve.log"; fail "ads serve did not find its agent beside it"; }
token=$(cat "$data/admin.token")
health=$(curl -sS -H "Authorization: Bearer $token" "$base/api/v1/health")
[ "$health" = '{"service":"ads","status":"ok"}' ] || fail "health: $health"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$base/api/v1/openapi.json")
[ "$code" = 200 ] || fail "openapi.json: $code"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$base/")
[ "$code" = 200 ] || fail "web UI: $code"
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=

echo "removing it"
DEBIAN_FRONTEND=noninteractive apt-get remove -y ads >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; fail "apt-get remove failed"; }
[ ! -e /usr/bin/ads ] || fail "/usr/bin/ads is still there after the removal"
echo "PASS: the package builds, installs, runs and is removed"

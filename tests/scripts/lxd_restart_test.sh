#!/usr/bin/env bash
# scripts/lxd-host.sh brings back an LXD daemon killed with -9 while a
# container runs (issue 16.4). The container's "[lxc monitor]" process (named
# lxd) outlives the daemon; the script took it for a daemon still starting,
# waited 60 s and failed. Uses the machine's real LXD: it is killed and
# started again, and left running (checked), with the test's container gone.
# Needs root, LXD set up by lxd-host.sh and the image ads-debian-12.
set -euo pipefail
script="$(cd "$(dirname "$0")/../.." && pwd)/scripts/lxd-host.sh"
socket=/var/lib/lxd/unix.socket
name=ads-lxdtest-$$
fail() { echo "FAIL: $*" >&2; exit 1; }
cleanup() { timeout 120 lxc delete --force "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT

listener() {
  ss -xlpnH 2>/dev/null | awk -v s="$socket" '$5 == s && match($0, /pid=[0-9]+/) { print substr($0, RSTART + 4, RLENGTH - 4); exit }'
}

timeout 110 bash "$script" >/dev/null || fail "lxd-host.sh failed before the test"
lxc image info ads-debian-12 >/dev/null 2>&1 || fail "no image ads-debian-12 (scripts/build-image.sh)"
timeout 120 lxc launch ads-debian-12 "$name" >/dev/null || fail "cannot launch a container"
[[ "$(lxc list "$name" -c s --format csv)" == RUNNING ]] || fail "the container does not run"
pgrep -f "^\[lxc monitor\] .* $name\$" >/dev/null || fail "no [lxc monitor] process for $name; the test shows nothing"

daemon=$(listener)
[[ -n $daemon ]] || fail "nothing listens on $socket"
kill -9 "$daemon"
for _ in $(seq 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$daemon" 2>/dev/null || fail "the daemon $daemon survived kill -9"
pgrep -f "^\[lxc monitor\] .* $name\$" >/dev/null || fail "the monitor went with the daemon; the test shows nothing"
! lxd waitready --timeout 1 >/dev/null 2>&1 || fail "LXD still answers after kill -9 of $daemon"

# the daemon is gone, the container's monitor (process name lxd) is not
out=$(timeout 100 bash "$script" 2>&1) || fail "lxd-host.sh did not bring LXD back: $out"
lxd waitready --timeout 5 || fail "LXD does not answer after lxd-host.sh"
new=$(listener)
[[ -n $new && $new != "$daemon" ]] || fail "no new daemon on $socket (listener: '${new}')"
[[ "$(lxc list "$name" -c s --format csv)" == RUNNING ]] || fail "the container did not survive the restart"
lxc exec "$name" -- true || fail "cannot run a command in the container after the restart"

# a second run changes nothing
out=$(timeout 100 bash "$script" 2>&1) || fail "second run failed: $out"
grep -q "LXD daemon already running" <<<"$out" || fail "second run did not find the daemon: $out"
[[ "$(listener)" == "$new" ]] || fail "the second run replaced the daemon"
echo "ok: LXD restarted (daemon $daemon killed, now $new), container $name kept running"

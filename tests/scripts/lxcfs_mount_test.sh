#!/usr/bin/env bash
# scripts/lxcfs-mount.sh recovers a mount left by an lxcfs that died: the
# state that made a CI run fail ("mkdir: cannot stat '/var/lib/lxcfs':
# Transport endpoint is not connected"). Runs in a private mount namespace on a
# directory of its own, so the machine's /var/lib/lxcfs is never touched.
# Needs root and lxcfs.
set -euo pipefail
script="$(cd "$(dirname "$0")/../.." && pwd)/scripts/lxcfs-mount.sh"

if [[ ${1:-} != inside ]]; then
  exec unshare --mount --propagation private bash "$0" inside
fi

work=$(mktemp -d)
dir=$work/lxcfs
pidfile=$work/lxcfs.pid
export ADS_LXCFS_LOG=$work/lxcfs.log
fail() { echo "FAIL: $*" >&2; [[ -f $ADS_LXCFS_LOG ]] && cat "$ADS_LXCFS_LOG" >&2; exit 1; }
cleanup() {
  [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
  umount -l "$dir" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# a first run mounts a live lxcfs
state=$(bash "$script" "$dir" "$pidfile") || fail "first mount failed"
[[ $state == fresh ]] || fail "first run said '$state', expected 'fresh'"
[[ -r $dir/proc/uptime ]] || fail "no $dir/proc/uptime after the first mount"

# a second run keeps it
state=$(bash "$script" "$dir" "$pidfile") || fail "second run failed"
[[ $state == kept ]] || fail "second run said '$state', expected 'kept'"

# lxcfs dies; its mount stays and cannot even be stat'ed
pid=$(cat "$pidfile")
kill -9 "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
grep -q " $dir fuse.lxcfs " /proc/self/mounts || fail "the mount went away with lxcfs; the test shows nothing"
if stat "$dir" >/dev/null 2>&1; then fail "a dead lxcfs's mount still answers; the test shows nothing"; fi

# the script detaches the stale mount and mounts a live lxcfs again
state=$(bash "$script" "$dir" "$pidfile") || fail "run on a stale mount failed"
[[ $state == fresh ]] || fail "run on a stale mount said '$state', expected 'fresh'"
cat "$dir/proc/uptime" >/dev/null || fail "$dir/proc/uptime unreadable after the recovery"
[[ $(grep -c " $dir fuse.lxcfs " /proc/self/mounts) -eq 1 ]] || fail "expected exactly one lxcfs mount on $dir"
echo "PASS: lxcfs-mount.sh mounts, keeps, and recovers a stale mount"

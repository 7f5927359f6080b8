#!/usr/bin/env bash
# scripts/lxd-host.sh's storage pool, both ways (issue 19): copy-on-write
# btrfs on a loop file where the kernel allows it, else a plain directory
# with a line saying why; an existing pool is kept as it is (a dir pool is
# never moved behind the operator's back), and a pool of the wrong driver
# asked for by name is refused. Uses the machine's real LXD with pools and
# profiles of its own (removed at the end); the machine's pool "ads" and
# profile "default" are not touched. Needs root, LXD and the image
# ads-debian-12 (scripts/build-image.sh).
set -euo pipefail
script="$(cd "$(dirname "$0")/../.." && pwd)/scripts/lxd-host.sh"
tag=adspt$$
tmp=$(mktemp -d)
fail() { echo "FAIL: $*" >&2; exit 1; }
cleanup() {
  for c in "$tag-c1" "$tag-c2" "$tag-c3"; do timeout 120 lxc delete --force "$c" >/dev/null 2>&1 || true; done
  for p in "$tag-fb" "$tag-cow" "$tag-x"; do lxc profile delete "$p" >/dev/null 2>&1 || true; done
  for pool in "$tag-fb" "$tag-cow" "$tag-x"; do
    # a btrfs pool keeps a volume of each image a container was made from
    for vol in $(lxc storage volume list "$pool" --format csv -c tn 2>/dev/null | awk -F, '$1 == "image" { print $2 }'); do
      lxc storage volume delete "$pool" "image/$vol" >/dev/null 2>&1 || true
    done
    lxc storage delete "$pool" >/dev/null 2>&1 || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

# runs the script for pool and profile $1 with further settings; its output
# in $out, its exit status returned
host() {
  local name=$1
  shift
  local rc=0
  out=$(env ADS_LXD_POOL="$name" ADS_LXD_PROFILE="$name" ADS_LXD_POOL_SIZE=2GiB "$@" timeout 110 bash "$script" 2>&1) || rc=$?
  return $rc
}
driver_of() { lxc storage show "$1" | sed -n 's/^driver: //p'; }

lxc image info ads-debian-12 >/dev/null 2>&1 || fail "no image ads-debian-12 (scripts/build-image.sh)"

# 1. a kernel without btrfs: the fallback, saying why
printf 'nodev\tproc\n\text4\n' >"$tmp/filesystems"
host "$tag-fb" ADS_PROC_FILESYSTEMS="$tmp/filesystems" || fail "fallback run failed: $out"
grep -q "no copy-on-write pool here: the kernel has no btrfs" <<<"$out" || fail "no line saying why there is no btrfs: $out"
[[ "$(driver_of "$tag-fb")" == dir ]] || fail "the fallback pool is $(driver_of "$tag-fb"), not dir"
[[ "$(lxc profile device get "$tag-fb" root pool)" == "$tag-fb" ]] || fail "the profile's root disk is not on the pool"
timeout 120 lxc init ads-debian-12 "$tag-c1" -p "$tag-fb" >/dev/null || fail "no container on the dir pool"
[[ -d /var/lib/lxd/storage-pools/$tag-fb/containers/$tag-c1/rootfs/etc ]] || fail "the container's files are not in the dir pool"

# 2. btrfs asked for by name where it cannot be: an error, and no pool
! host "$tag-x" ADS_PROC_FILESYSTEMS="$tmp/filesystems" ADS_LXD_POOL_DRIVER=btrfs || fail "btrfs without btrfs succeeded: $out"
grep -q "cannot make a btrfs pool: the kernel has no btrfs" <<<"$out" || fail "unclear error: $out"
! lxc storage show "$tag-x" >/dev/null 2>&1 || fail "a pool was made anyway"

# 3. this machine has btrfs and loop devices: the copy-on-write pool
host "$tag-cow" || fail "run failed: $out"
grep -q "pool $tag-cow (btrfs on a sparse loop file of 2GiB" <<<"$out" || fail "no btrfs pool made here: $out"
[[ "$(driver_of "$tag-cow")" == btrfs ]] || fail "the pool is $(driver_of "$tag-cow"), not btrfs"
timeout 120 lxc init ads-debian-12 "$tag-c2" -p "$tag-cow" >/dev/null || fail "no first container on the btrfs pool"
timeout 120 lxc init ads-debian-12 "$tag-c3" -p "$tag-cow" >/dev/null || fail "no second container on the btrfs pool"
# each container a snapshot of the image's volume: the pool holds the image
# once, not once per container (a dir pool holds a full copy each)
lxc storage volume list "$tag-cow" --format csv -c tn | grep -q "^image," || fail "no image volume on the btrfs pool"
lxc storage volume show "$tag-cow" "container/$tag-c3" >/dev/null || fail "the container is not on the btrfs pool"
used=$(lxc storage info "$tag-cow" --bytes | sed -n 's/^ *space used: "\{0,1\}\([0-9]*\)"\{0,1\}$/\1/p')
[[ $used =~ ^[0-9]+$ ]] || fail "cannot read the pool's space used"
image_bytes=$(du -sb "/var/lib/lxd/storage-pools/$tag-fb/containers/$tag-c1/rootfs" | cut -f1)
# two containers and the image take less than two full copies would
((used < 2 * image_bytes)) || fail "btrfs pool uses $used bytes for two containers; one full copy is $image_bytes"
host "$tag-cow" || fail "second run failed: $out"
grep -q "LXD already initialised (pool $tag-cow (btrfs)" <<<"$out" || fail "the second run changed something: $out"

# 4. an existing dir pool is kept (auto), and refused when btrfs is asked for
host "$tag-fb" || fail "a run over the existing dir pool failed: $out"
grep -q "pool $tag-fb is a dir pool .* kept as it is" <<<"$out" || fail "no line saying the dir pool is kept: $out"
grep -q "docs/operators/lxd.md" <<<"$out" || fail "no pointer to how to move: $out"
[[ "$(driver_of "$tag-fb")" == dir ]] || fail "the dir pool changed"
! host "$tag-fb" ADS_LXD_POOL_DRIVER=btrfs || fail "btrfs over an existing dir pool succeeded: $out"
grep -q "exists with driver dir, not btrfs: an existing pool is never changed" <<<"$out" || fail "unclear error: $out"
lxc info "$tag-c1" >/dev/null || fail "the dir pool's container is gone"

# 5. settings that are not settings
! host "$tag-x" ADS_LXD_POOL_DRIVER=zfs || fail "driver zfs accepted"
grep -q "ADS_LXD_POOL_DRIVER must be auto, btrfs or dir" <<<"$out" || fail "unclear error: $out"
! host "$tag-x" ADS_LXD_POOL_SIZE="2GiB; rm -rf /" || fail "a hostile size accepted"
grep -q "ADS_LXD_POOL_SIZE must be like 20GiB" <<<"$out" || fail "unclear error: $out"
! host "$tag-x" ADS_LXD_POOL="../x" || fail "a hostile pool name accepted"
grep -q "ADS_LXD_POOL: '../x' is no storage pool name" <<<"$out" || fail "unclear error: $out"
echo "ok: btrfs pool (two containers in $used bytes, a full copy $image_bytes), dir fallback, existing pool kept"

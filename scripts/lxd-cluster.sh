#!/usr/bin/env bash
# A throw-away LXD cluster of two members on this machine, for tests.
#
#   lxd-cluster.sh up DIR     start it; DIR must be an empty directory
#   lxd-cluster.sh down DIR   stop and remove everything `up` made (idempotent)
#
# Each member is its own LXD daemon (LXD_DIR=DIR/mN) in its own network
# namespace, plugged by a veth pair into a bridge made here (10.251.X.0/24,
# X free on this host; the host at .1, members at .201 and .202 on a bridge
# br0 inside their namespace, cluster port 8443; .2-.200 are free for lab
# containers with a bridged NIC on br0, see docs/operators/bridged.md). Member 1
# bootstraps the cluster (storage pool "ads", dir driver; default profile with
# only a root disk: no NIC), member 2 joins with a token. The image
# ads-debian-12 is imported from the tarballs scripts/build-image.sh caches.
# `up` writes DIR/cluster.env (SOCKET1, SOCKET2, MEMBERS, ...) and, on
# failure, runs `down` itself. The machine's main LXD (/var/lib/lxd) is never
# touched: every lxc/lxd call here carries an explicit LXD_DIR.
# Like scripts/lxd-host.sh, the daemons' instance-types fetch goes to a dead
# loopback proxy; nothing leaves 127.0.0.0/8 and the bridge made here.
set -euo pipefail

IMAGE_ALIAS=ads-debian-12
CACHE_DIR=${ADS_IMAGE_CACHE:-/var/cache/ads/images}
PORT=8443

log() { echo "ads-cluster: $*" >&2; }
die() { echo "ads-cluster: ERROR: $*" >&2; exit 1; }
usage() { echo "usage: $0 up|down DIR" >&2; exit 2; }

[[ $# -eq 2 ]] || usage
CMD=$1
DIR=$(realpath -m -- "$2")
[[ $EUID -eq 0 ]] || die "must run as root"
[[ "$DIR" == /* && "$DIR" != / ]] || die "bad directory: $2"
[[ "$DIR" != /var/lib/lxd* ]] || die "refusing $DIR: that is the main LXD"

# Runs lxc/lxd against member N only.
member() { local n=$1; shift; LXD_DIR="$DIR/m$n" "$@"; }

down() {
  [[ -f "$DIR/cluster.env" ]] || [[ -f "$DIR/names.env" ]] || { log "nothing to remove in $DIR"; return 0; }
  # shellcheck disable=SC1091
  source "$DIR/names.env"
  for n in 2 1; do
    local d="$DIR/m$n"
    [[ -d "$d" ]] || continue
    if [[ -S "$d/unix.socket" ]]; then
      # remove instances first: a dir-pool container is a directory tree
      for inst in $(member "$n" lxc list --format csv -c n 2>/dev/null || true); do
        member "$n" lxc delete -f "$inst" >/dev/null 2>&1 || true
      done
    fi
    if [[ -f "$d/lxd.pid" ]]; then
      local pid; pid=$(cat "$d/lxd.pid")
      if kill -0 "$pid" 2>/dev/null; then
        member "$n" timeout 60 lxd shutdown --timeout 30 >/dev/null 2>&1 || true
        kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    # LXD leaves mounts under its LXD_DIR (shmounts, devlxd, storage)
    for _ in 1 2 3; do
      { grep -F " $d/" /proc/self/mounts || true; } | awk '{print $2}' | sort -r | while read -r mnt; do
        umount -l "$(printf '%b' "$mnt")" 2>/dev/null || true
      done
    done
  done
  for ns in "${NS1:-}" "${NS2:-}"; do
    [[ -n "$ns" ]] && ip netns del "$ns" 2>/dev/null || true
  done
  [[ -n "${BRIDGE:-}" ]] && ip link del "$BRIDGE" 2>/dev/null || true
  if grep -qF " $DIR/" /proc/self/mounts 2>/dev/null; then
    log "some mounts under $DIR remain; not deleting it"
  else
    rm -rf --one-file-system "$DIR"
  fi
  log "removed"
}

wait_ready() {
  local n=$1
  member "$n" lxd waitready --timeout 60 || { tail -20 "$DIR/m$n/lxd.log" >&2; die "member $n did not become ready"; }
}

start_member() {
  local n=$1 ns=$2
  mkdir -p "$DIR/m$n"
  chmod 0711 "$DIR/m$n"
  # The daemon gets the namespace's network and its own mount namespace
  # (a slave: nothing it mounts reaches the host; its mounts go away with its
  # processes). LXD looks at NICs in /sys/class/net, which shows the
  # namespace that mounted sysfs: the namespace's view of the net entries is
  # bound over the host's; the rest of /sys (cgroups!) stays the host's.
  # (`ip netns exec` remounts all of /sys: no cgroups, no memory limits.)
  LXD_DIR="$DIR/m$n" setsid nsenter --net="/run/netns/$ns" unshare --mount --propagation slave \
    sh -c 'set -e
      mkdir -p "$1/sys"
      mount -t sysfs sysfs "$1/sys"
      mount --bind "$1/sys/class/net" /sys/class/net
      mount --bind "$1/sys/devices/virtual/net" /sys/devices/virtual/net
      shift
      cd /  # not the caller'"'"'s directory, which may be deleted while LXD runs
      exec "$@"' sh "$DIR/m$n" \
    env https_proxy=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 no_proxy="127.0.0.1,localhost,$NET.0/24" \
    lxd --group root --logfile "$DIR/m$n/lxd.log" </dev/null >/dev/null 2>&1 &
  echo $! >"$DIR/m$n/lxd.pid"
}

up() {
  command -v lxd >/dev/null && command -v lxc >/dev/null || die "lxd not installed; run scripts/install-deps.sh"
  mkdir -p "$DIR"
  [[ -z "$(ls -A "$DIR")" ]] || die "$DIR is not empty"
  # unprivileged containers (uid 100000...) must traverse down to their rootfs
  chmod 0711 "$DIR"
  local meta="$CACHE_DIR/$IMAGE_ALIAS.meta.tar.gz" rootfs="$CACHE_DIR/$IMAGE_ALIAS.rootfs.tar.gz"
  if [[ ! -f "$meta" || ! -f "$rootfs" ]]; then
    # no cached tarballs: export the image from the main LXD (a read)
    log "no cached image in $CACHE_DIR; exporting $IMAGE_ALIAS from the main LXD"
    mkdir -p "$DIR/image"
    LXD_DIR=/var/lib/lxd lxc image export "$IMAGE_ALIAS" "$DIR/image/" >/dev/null ||
      die "no image: run scripts/lxd-host.sh and scripts/build-image.sh first"
    meta=$(ls "$DIR"/image/meta-* 2>/dev/null | head -1)
    rootfs=$(ls "$DIR"/image/*.tar.* 2>/dev/null | grep -v '/meta-' | head -1)
    [[ -n "$meta" && -n "$rootfs" ]] || die "unexpected export of $IMAGE_ALIAS: $(ls "$DIR/image")"
  fi
  local x="" tag=$(( $$ % 100000 ))
  for i in $(seq 0 249); do
    local cand=$(( ($$ + i) % 250 + 1 ))
    if [[ -z "$(ip -4 -o addr show to "10.251.$cand.0/24")" ]] && ! ip route show | grep -q "^10\.251\.$cand\."; then
      x=$cand; break
    fi
  done
  [[ -n "$x" ]] || die "no free 10.251.X.0/24"
  NET=10.251.$x
  BRIDGE=adscb$tag NS1=ads-lxdc-$tag-1 NS2=ads-lxdc-$tag-2
  printf 'BRIDGE=%s\nNS1=%s\nNS2=%s\nNET=%s\n' "$BRIDGE" "$NS1" "$NS2" "$NET" >"$DIR/names.env"
  UP_DONE=0
  trap '[[ $UP_DONE == 1 ]] || { log "failed; cleaning up"; down; }' EXIT

  ip link add name "$BRIDGE" type bridge
  ip addr add "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for n in 1 2; do
    local ns="ads-lxdc-$tag-$n" vh="adscv$tag$n" vn="adscw$tag$n"
    ip netns add "$ns"
    ip link add "$vh" type veth peer name "$vn"
    ip link set "$vh" master "$BRIDGE" up
    ip link set "$vn" netns "$ns"
    ip -n "$ns" link set "$vn" name eth0
    # the member's address sits on a bridge br0 holding eth0, so that a
    # container with a bridged NIC (parent br0) is on the host's bridge too
    ip -n "$ns" link add br0 type bridge
    ip -n "$ns" link set eth0 master br0
    ip -n "$ns" addr add "$NET.$((200 + n))/24" dev br0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set br0 up
    ip -n "$ns" link set lo up
  done

  start_member 1 "$NS1"
  wait_ready 1
  member 1 lxd init --preseed <<EOF
config:
  core.https_address: $NET.201:$PORT
cluster:
  server_name: m1
  enabled: true
storage_pools:
- name: ads
  driver: dir
  config: {}
profiles:
- name: default
  devices:
    root:
      type: disk
      path: /
      pool: ads
EOF
  local token
  token=$(member 1 lxc cluster add m2 | tail -1)
  [[ -n "$token" ]] || die "no join token"
  start_member 2 "$NS2"
  wait_ready 2
  member 2 lxd init --preseed <<EOF
cluster:
  enabled: true
  server_name: m2
  server_address: $NET.202:$PORT
  cluster_token: $token
  member_config:
  - entity: storage-pool
    name: ads
    key: source
    value: ""
EOF
  member 1 lxc image import "$meta" "$rootfs" --alias "$IMAGE_ALIAS" >/dev/null
  rm -rf "$DIR/image"
  printf 'SOCKET1=%s\nSOCKET2=%s\nMEMBERS=m1,m2\nMEMBER_BRIDGE=br0\n' "$DIR/m1/unix.socket" "$DIR/m2/unix.socket" >>"$DIR/names.env"
  cp "$DIR/names.env" "$DIR/cluster.env"
  UP_DONE=1
  member 1 lxc cluster list --format csv >&2
  log "up: $DIR/cluster.env"
}

case $CMD in
  up) up ;;
  down) down ;;
  *) usage ;;
esac

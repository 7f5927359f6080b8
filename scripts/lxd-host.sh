#!/usr/bin/env bash
# Makes LXD usable on this machine (Debian 12, no systemd as PID 1):
#   0. mounts lxcfs, so that each container sees its own memory and uptime,
#   1. starts the LXD daemon by hand if it is not answering,
#   2. initialises it once: the storage pool "ads" (copy-on-write btrfs on a
#      loop file where the kernel allows it, else a plain directory), the
#      bridge "adsbr0" and the default profile,
#   3. prints the path of the LXD unix socket.
# Idempotent: a second run changes nothing. An existing pool is kept as it is
# (a dir pool is never moved to btrfs behind the operator's back; the script
# says how: docs/operators/lxd.md, "Storage pool").
# Settings (environment):
#   ADS_LXD_POOL         the pool's name (ads)
#   ADS_LXD_POOL_DRIVER  auto (btrfs if possible, else dir), btrfs or dir (auto)
#   ADS_LXD_POOL_SIZE    the btrfs loop file's size, sparse (20GiB)
#   ADS_LXD_PROFILE      the profile whose root disk is on the pool (default)
set -euo pipefail

POOL=${ADS_LXD_POOL:-ads}
POOL_DRIVER=${ADS_LXD_POOL_DRIVER:-auto}
POOL_SIZE=${ADS_LXD_POOL_SIZE:-20GiB}
PROFILE=${ADS_LXD_PROFILE:-default}
BRIDGE=adsbr0
BRIDGE_ADDR=10.213.87.1/24
LXD_LOG=/var/log/ads-lxd.log
LXD_SOCKET=/var/lib/lxd/unix.socket
# where the kernel lists the file systems it has (a test points it elsewhere
# to see the fallback)
PROC_FILESYSTEMS=${ADS_PROC_FILESYSTEMS:-/proc/filesystems}

log() { echo "ads: $*"; }
die() { echo "ads: ERROR: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root"
case "$POOL_DRIVER" in auto | btrfs | dir) ;; *) die "ADS_LXD_POOL_DRIVER must be auto, btrfs or dir (not '$POOL_DRIVER')" ;; esac
[[ $POOL =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]] || die "ADS_LXD_POOL: '$POOL' is no storage pool name"
[[ $PROFILE =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]] || die "ADS_LXD_PROFILE: '$PROFILE' is no profile name"
[[ $POOL_SIZE =~ ^[1-9][0-9]*(MiB|GiB|TiB)$ ]] || die "ADS_LXD_POOL_SIZE must be like 20GiB (MiB, GiB or TiB; not '$POOL_SIZE')"
for tool in lxd lxc iptables dnsmasq; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found; run scripts/install-deps.sh (dnsmasq comes from package dnsmasq-base)"
done

# --- 0. lxcfs --------------------------------------------------------------
# lxcfs serves each container its own /proc/meminfo, /proc/uptime, ... (what
# the agent reports as the lab's health). LXD uses it for the containers it
# starts when /var/lib/lxcfs is mounted at LXD's own start, so it comes first.
lxcfs_state=$(bash "$(dirname "$0")/lxcfs-mount.sh" /var/lib/lxcfs)
lxcfs_fresh=no
[[ $lxcfs_state == fresh ]] && lxcfs_fresh=yes

# --- 1. daemon -------------------------------------------------------------
# The daemon is the process listening on LXD's socket. Not every process
# named "lxd" is one: each running container has an "[lxc monitor]" process
# whose name is lxd too (it outlives a killed daemon, and was once taken for a
# daemon still starting: the script waited 60 s and failed instead of
# starting LXD), and there are "lxd forkproxy", "lxd waitready"...
# Prints the daemon's pid: the socket's listener, or else a process whose
# argv is "lxd [--option...]" (a daemon that has not opened its socket yet);
# nothing when there is no daemon.
lxd_daemon_pid() {
  local pid argv
  pid=$(ss -xlpnH 2>/dev/null | awk -v s="$LXD_SOCKET" \
    '$5 == s && match($0, /pid=[0-9]+/) { print substr($0, RSTART + 4, RLENGTH - 4); exit }')
  if [[ -n $pid ]]; then
    echo "$pid"
    return 0
  fi
  for pid in $(pgrep -x lxd || true); do
    # a zombie is no daemon (PID 1 here may not reap)
    [[ "$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && continue
    argv=()
    mapfile -d '' -t argv <"/proc/$pid/cmdline" 2>/dev/null || continue
    [[ ${#argv[@]} -gt 0 && "${argv[0]##*/}" == lxd ]] || continue
    [[ ${#argv[@]} -eq 1 || "${argv[1]}" == -* ]] || continue
    case " ${argv[*]:1} " in *" waitready "* | *" shutdown "* | *" init "*) continue ;; esac
    echo "$pid"
    return 0
  done
  return 0
}

# Daemons start in / : a daemon keeps the directory it was started from as its
# working directory, and LXD's rsync (snapshots on the dir pool) fails with
# "getcwd(): No such file or directory" once that directory is deleted (seen
# when LXD had been started from a CI checkout that was later removed). An LXD
# left in that state is restarted.
lxd_pid=$(lxd_daemon_pid)
if [[ -n $lxd_pid ]] && [[ "$(readlink "/proc/$lxd_pid/cwd" 2>/dev/null)" == *"(deleted)" ]] &&
   lxd waitready --timeout 2 >/dev/null 2>&1; then
  log "LXD runs in a deleted directory ($(readlink "/proc/$lxd_pid/cwd")): restarting it from /"
  lxd shutdown --timeout 120 >/dev/null 2>&1 || true
fi
if lxd waitready --timeout 2 >/dev/null 2>&1 && [[ $lxcfs_fresh == yes ]] &&
   [[ -z "$(lxc list --all-projects --format csv -c n 2>/dev/null)" ]]; then
  # LXD started before lxcfs does not use it; with no instances to disturb, restart it
  log "LXD runs without lxcfs and has no instances: restarting it"
  lxd shutdown --timeout 60 >/dev/null 2>&1 || true
fi
if lxd waitready --timeout 2 >/dev/null 2>&1; then
  log "LXD daemon already running"
  [[ $lxcfs_fresh == no ]] ||
    log "note: LXD was started before lxcfs; containers show the host's memory until LXD restarts (lxd shutdown; rerun this script)"
else
  # A daemon that does not answer yet is still starting; do not start a
  # second one. Containers' monitors of a crashed daemon are no daemon.
  lxd_pid=$(lxd_daemon_pid)
  if [[ -n $lxd_pid ]]; then
    log "LXD daemon process $lxd_pid exists but is not ready yet; waiting"
  else
    monitors=$(pgrep -fc '^\[lxc monitor\]' || true)
    [[ ${monitors:-0} -eq 0 ]] || log "no LXD daemon, but $monitors container monitor(s) run (a crashed LXD?): starting it"
    log "starting LXD daemon (log: $LXD_LOG)"
    # LXD fetches instance types from the internet at start; this machine has
    # no internet, and we send nothing off-host: a dead loopback proxy makes
    # that fetch fail at once without even a DNS lookup. Private addresses
    # (image servers on bridges of this host, docs/operators/lxd.md) are
    # reached directly.
    (cd / || exit 1; setsid env https_proxy=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 \
      no_proxy=127.0.0.1,localhost,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16 \
      lxd --group root --logfile "$LXD_LOG" </dev/null >/dev/null 2>&1 &)
  fi
  lxd waitready --timeout 60 || die "LXD daemon did not become ready within 60 s; see $LXD_LOG"
  log "LXD daemon ready"
fi

# --- 2. initialisation -------------------------------------------------------
# Why a btrfs pool cannot be made here ("" : it can). Copy-on-write makes a
# container a snapshot of its image: created in a fraction of a second and a
# few MB of disk, against seconds and the image's full size on dir.
no_cow_reason() {
  # Debian's kernels have btrfs as a module, listed only once loaded
  [[ -n ${ADS_PROC_FILESYSTEMS:-} ]] || modprobe -q btrfs 2>/dev/null || true
  grep -qw btrfs "$PROC_FILESYSTEMS" 2>/dev/null || { echo "the kernel has no btrfs ($PROC_FILESYSTEMS)"; return 0; }
  command -v mkfs.btrfs >/dev/null 2>&1 || { echo "no mkfs.btrfs (Debian: btrfs-progs)"; return 0; }
  { [[ -e /dev/loop-control ]] && losetup -f >/dev/null 2>&1; } || { echo "no free loop device"; return 0; }
  return 0
}

# The driver of the pool if it exists ("" if not).
pool_driver() { { lxc storage show "$POOL" 2>/dev/null || true; } | sed -n 's/^driver: //p'; }

# Devices of the profile other than root and eth0 (one per line).
extra_profile_devices() {
  lxc profile device list "$PROFILE" 2>/dev/null | grep -vxE 'root|eth0' || true
}

# True when pool, bridge and profile already look the way we want.
initialised() {
  [[ -n "$(pool_driver)" ]] || return 1
  lxc network show "$BRIDGE" >/dev/null 2>&1 || return 1
  [[ "$(lxc network get "$BRIDGE" ipv4.address)" == "$BRIDGE_ADDR" ]] || return 1
  [[ "$(lxc network get "$BRIDGE" ipv4.nat)" == false ]] || return 1
  [[ "$(lxc network get "$BRIDGE" ipv6.address)" == none ]] || return 1
  [[ "$(lxc profile device get "$PROFILE" root pool 2>/dev/null)" == "$POOL" ]] || return 1
  [[ "$(lxc profile device get "$PROFILE" root path 2>/dev/null)" == / ]] || return 1
  [[ "$(lxc profile device get "$PROFILE" eth0 network 2>/dev/null)" == "$BRIDGE" ]] || return 1
  [[ -z "$(extra_profile_devices)" ]] || return 1
  return 0
}

# The pool: kept as it is if it exists, else made with the driver asked for.
driver=$(pool_driver)
pool_config="{}"
if [[ -n $driver ]]; then
  if [[ $POOL_DRIVER == btrfs && $driver != btrfs ]] || [[ $POOL_DRIVER == dir && $driver != dir ]]; then
    die "pool $POOL exists with driver $driver, not $POOL_DRIVER: an existing pool is never changed; see docs/operators/lxd.md, \"Storage pool\""
  fi
  if [[ $driver == dir && $POOL_DRIVER == auto && -z "$(no_cow_reason)" ]]; then
    log "pool $POOL is a dir pool (made before ADS used copy-on-write pools) and is kept as it is; on btrfs a container is made in a fraction of the time and takes a few MB; to move, see docs/operators/lxd.md, \"Storage pool\""
  fi
else
  driver=$POOL_DRIVER
  if [[ $driver != dir ]]; then
    reason=$(no_cow_reason)
    if [[ -n $reason ]]; then
      [[ $driver == auto ]] || die "cannot make a btrfs pool: $reason"
      log "no copy-on-write pool here: $reason; pool $POOL is a plain directory (dir): each container a full copy of its image"
      driver=dir
    else
      driver=btrfs
      pool_config="{size: $POOL_SIZE}"
    fi
  fi
fi

if initialised; then
  log "LXD already initialised (pool $POOL ($driver), bridge $BRIDGE, profile $PROFILE)"
else
  what=$driver
  [[ $pool_config != "{}" ]] && what="btrfs on a sparse loop file of $POOL_SIZE in /var/lib/lxd/disks"
  log "initialising LXD: pool $POOL ($what), bridge $BRIDGE ($BRIDGE_ADDR, no NAT, no IPv6), profile $PROFILE"
  # The preseed creates what is missing and updates what exists. For the
  # profile it sets root and eth0 but keeps other existing devices; those
  # are removed right after.
  lxd init --preseed <<EOF || die "lxd init --preseed failed; see $LXD_LOG"
config: {}
storage_pools:
- name: $POOL
  driver: $driver
  config: $pool_config
networks:
- name: $BRIDGE
  type: bridge
  config:
    ipv4.address: $BRIDGE_ADDR
    ipv4.nat: "false"
    ipv6.address: none
profiles:
- name: $PROFILE
  description: ADS profile
  config: {}
  devices:
    root:
      type: disk
      path: /
      pool: $POOL
    eth0:
      type: nic
      name: eth0
      network: $BRIDGE
EOF
  for dev in $(extra_profile_devices); do
    log "removing stale device '$dev' from profile $PROFILE"
    lxc profile device remove "$PROFILE" "$dev" >/dev/null
  done
  initialised || die "LXD initialisation did not produce the expected pool/bridge/profile"
  log "LXD initialised"
fi

# --- 3. socket ---------------------------------------------------------------
[[ -S "$LXD_SOCKET" ]] || die "LXD socket $LXD_SOCKET not found"
log "LXD socket: $LXD_SOCKET"

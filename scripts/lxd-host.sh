#!/usr/bin/env bash
# Makes LXD usable on this machine (Debian 12, no systemd as PID 1):
#   0. mounts lxcfs, so that each container sees its own memory and uptime,
#   1. starts the LXD daemon by hand if it is not answering,
#   2. initialises it once (storage pool "ads", bridge "adsbr0", default profile),
#   3. prints the path of the LXD unix socket.
# Idempotent: a second run changes nothing.
set -euo pipefail

POOL=ads
BRIDGE=adsbr0
BRIDGE_ADDR=10.213.87.1/24
LXD_LOG=/var/log/ads-lxd.log
LXD_SOCKET=/var/lib/lxd/unix.socket

log() { echo "ads: $*"; }
die() { echo "ads: ERROR: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "must run as root"
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
# Devices of the default profile other than root and eth0 (one per line).
extra_profile_devices() {
  lxc profile device list default | grep -vxE 'root|eth0' || true
}

# True when pool, bridge and default profile already look the way we want.
initialised() {
  lxc storage show "$POOL" 2>/dev/null | grep -qx 'driver: dir' || return 1
  lxc network show "$BRIDGE" >/dev/null 2>&1 || return 1
  [[ "$(lxc network get "$BRIDGE" ipv4.address)" == "$BRIDGE_ADDR" ]] || return 1
  [[ "$(lxc network get "$BRIDGE" ipv4.nat)" == false ]] || return 1
  [[ "$(lxc network get "$BRIDGE" ipv6.address)" == none ]] || return 1
  [[ "$(lxc profile device get default root pool 2>/dev/null)" == "$POOL" ]] || return 1
  [[ "$(lxc profile device get default root path 2>/dev/null)" == / ]] || return 1
  [[ "$(lxc profile device get default eth0 network 2>/dev/null)" == "$BRIDGE" ]] || return 1
  [[ -z "$(extra_profile_devices)" ]] || return 1
  return 0
}

if initialised; then
  log "LXD already initialised (pool $POOL, bridge $BRIDGE, default profile)"
else
  log "initialising LXD: pool $POOL (dir), bridge $BRIDGE ($BRIDGE_ADDR, no NAT, no IPv6), default profile"
  # The preseed creates what is missing and updates what exists. For the
  # default profile it sets root and eth0 but keeps other existing devices;
  # those are removed right after.
  lxd init --preseed <<EOF || die "lxd init --preseed failed; see $LXD_LOG"
config: {}
storage_pools:
- name: $POOL
  driver: dir
  config: {}
networks:
- name: $BRIDGE
  type: bridge
  config:
    ipv4.address: $BRIDGE_ADDR
    ipv4.nat: "false"
    ipv6.address: none
profiles:
- name: default
  description: Default ADS profile
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
    log "removing stale device '$dev' from the default profile"
    lxc profile device remove default "$dev" >/dev/null
  done
  initialised || die "LXD initialisation did not produce the expected pool/bridge/profile"
  log "LXD initialised"
fi

# --- 3. socket ---------------------------------------------------------------
[[ -S "$LXD_SOCKET" ]] || die "LXD socket $LXD_SOCKET not found"
log "LXD socket: $LXD_SOCKET"

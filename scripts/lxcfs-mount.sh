#!/usr/bin/env bash
# Mounts lxcfs on DIR (default /var/lib/lxcfs) unless a live lxcfs is mounted
# there already. Prints "fresh" on stdout when it started one, "kept"
# otherwise; what it does goes to stderr. Used by scripts/lxd-host.sh; tests/scripts/lxcfs_mount_test.sh
# runs it on a directory of its own, in a private mount namespace.
#   lxcfs-mount.sh [DIR [PIDFILE]]
set -euo pipefail

DIR=${1:-/var/lib/lxcfs}
PIDFILE=${2:-/run/lxcfs.pid}
LOG=${ADS_LXCFS_LOG:-/var/log/ads-lxcfs.log}

log() { echo "ads: $*" >&2; }
die() { echo "ads: ERROR: $*" >&2; exit 1; }

# An lxcfs that died (killed with the session that started it) leaves its
# mount behind; every access to it then fails with "Transport endpoint is not
# connected", mkdir included (this made a CI run fail). Such a mount is
# detached (lazily: containers may still hold it) and a fresh lxcfs mounted in
# its place.
if grep -qs "^[^ ]* $DIR fuse\.lxcfs " /proc/self/mounts && ! stat "$DIR" >/dev/null 2>&1; then
  log "lxcfs on $DIR is gone but its mount is left (stale): detaching it"
  umount -l "$DIR" || die "could not detach the stale lxcfs mount on $DIR"
fi
if mountpoint -q "$DIR"; then
  log "lxcfs already mounted on $DIR"
  echo kept
  exit 0
fi
command -v lxcfs >/dev/null 2>&1 || die "'lxcfs' not found; run scripts/install-deps.sh"
mkdir -p "$DIR"
log "starting lxcfs on $DIR (log: $LOG)"
# "cd / || exit; X &", not "cd / && X &": there the "&" would put the whole
# list in a background subshell that waits for lxcfs while holding this
# script's stdout (a caller reading it, as in $(...), would never see EOF).
(cd / || exit 1; setsid lxcfs --pidfile="$PIDFILE" "$DIR" </dev/null >>"$LOG" 2>&1 &)
for _ in $(seq 50); do mountpoint -q "$DIR" && break; sleep 0.2; done
mountpoint -q "$DIR" || die "lxcfs did not mount $DIR; see $LOG"
echo fresh

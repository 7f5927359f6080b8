#!/usr/bin/env bash
# Builds and imports an LXD image (Debian 12 bookworm) that lab containers
# are launched from. Two variants:
#   minimal  "ads-debian-12" (OS key debian-12): Debian minbase plus
#            busybox-static, tini and ca-certificates; every lab by default
#   build    "ads-debian-12-build" (OS key debian-12-build): the same plus
#            Python 3, Ansible (ansible-core, python3-apt), build tools
#            (make, gcc) and openssh-server (not started: the agent starts
#            an sshd of its own only while ADS's Ansible controller runs a
#            playbook, with a host key it makes per machine); for labs that
#            install with a playbook or compile, asked for with
#            "os": {..., "variant": "build"}
#
#   build-image.sh [--variant V]           use what exists: the imported image,
#                                          else the cached tarballs in
#                                          /var/cache/ads/images/, else build
#   build-image.sh [--variant V] --force   rebuild from scratch with debootstrap,
#                                          refresh the cached tarballs and
#                                          re-point the alias
#   build-image.sh ... --agent PATH        the ads-agent the image carries
#                                          (default: $ADS_AGENT_BIN, else
#                                          build/ads-agent of this tree, else
#                                          the ads-agent on PATH; none: the
#                                          image carries no agent)
#
# The image carries the agent at /usr/local/bin/ads-agent and lists it with
# its SHA-256 in /etc/ads/image-files.sha256: ADS does not send a machine an
# agent its image holds already, and sends its own where they differ (an
# image built before the agent changed). No secret or agent config is ever
# in the image: ADS places them in each machine.
#
# Its init is /sbin/ads-init (/sbin/init links to it): it puts tini in PID 1,
# brings up eth0 with busybox udhcpc, then runs /usr/local/bin/ads-agent
# (--config /etc/ads-agent/agent.json); a machine booted without that config
# (a warm machine) waits for /etc/ads-agent/claimed first, and one without an
# agent sleeps.
# Needs: a running, initialised LXD (scripts/lxd-host.sh), debootstrap, root.
set -euo pipefail

SUITE=bookworm
CACHE_DIR=/var/cache/ads/images
FALLBACK_MIRROR=http://deb.debian.org/debian

log() { echo "ads: $*"; }
die() { echo "ads: ERROR: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

usage() { echo "usage: $0 [--variant minimal|build] [--force] [--agent PATH]" >&2; exit 2; }
FORCE=0
VARIANT=minimal
AGENT=${ADS_AGENT_BIN:-}
while (($#)); do
  case $1 in
    --force) FORCE=1 ;;
    --variant) (($# >= 2)) || usage; VARIANT=$2; shift ;;
    --agent) (($# >= 2)) || usage; AGENT=$2; shift ;;
    *) usage ;;
  esac
  shift
done
INCLUDE=busybox-static,tini,ca-certificates
case $VARIANT in
  minimal) ALIAS=ads-debian-12 ;;
  build)
    ALIAS=ads-debian-12-build
    # python3-cffi-backend: debootstrap does not resolve virtual packages
    # (python3-cryptography needs python3-cffi-backend-api-min, which it provides)
    INCLUDE=$INCLUDE,python3,python3-apt,python3-cffi-backend,ansible-core,make,gcc,libc6-dev,openssh-server
    ;;
  *) echo "ads: ERROR: unknown variant '$VARIANT' (known: minimal, build)" >&2; usage ;;
esac
# What the customisation below makes; change it whenever that changes, so
# that cached images and tarballs of the old kind are rebuilt.
FORMAT=format-5
META_TGZ="$CACHE_DIR/$ALIAS.meta.tar.gz"
ROOTFS_TGZ="$CACHE_DIR/$ALIAS.rootfs.tar.gz"

[[ $EUID -eq 0 ]] || die "must run as root"
command -v lxc >/dev/null 2>&1 || die "lxc not found; run scripts/install-deps.sh"
lxc info >/dev/null 2>&1 || die "cannot talk to the LXD daemon; run scripts/lxd-host.sh first"

# ---------------------------------------------------------------------------
# Import META ROOTFS and point the alias at it. Idempotent: the fingerprint of
# a split image is the sha256 of the metadata tarball followed by the rootfs
# tarball, so an image that is already present is not imported again.
import_image() {
  local meta=$1 rootfs=$2 fp old="" t0
  t0=$(now)
  fp=$(cat "$meta" "$rootfs" | sha256sum | cut -d' ' -f1)
  if lxc image info "$fp" >/dev/null 2>&1; then
    log "image $fp already in LXD"
  else
    log "importing image into LXD"
    lxc image import "$meta" "$rootfs" >/dev/null || die "lxc image import failed"
  fi
  if lxc image info "$ALIAS" >/dev/null 2>&1; then
    old=$(lxc image info "$ALIAS" | awk '/^Fingerprint:/ { print $2 }')
  fi
  if [[ "$old" != "$fp" ]]; then
    [[ -n "$old" ]] && lxc image alias delete "$ALIAS"
    lxc image alias create "$ALIAS" "$fp" || die "cannot create alias $ALIAS"
    if [[ -n "$old" ]]; then
      log "deleting previous image $old"
      lxc image delete "$old" || log "warning: could not delete previous image $old"
    fi
  fi
  lxc image info "$ALIAS" >/dev/null 2>&1 || die "image alias $ALIAS missing after import"
  log "import done in $(since "$t0"): $ALIAS -> ${fp:0:12}"
}

# the agent the image carries
if [[ -z $AGENT ]]; then
  tree_agent="$(cd "$(dirname "$0")/.." && pwd)/build/ads-agent"
  if [[ -x $tree_agent ]]; then
    AGENT=$tree_agent
  elif command -v ads-agent >/dev/null 2>&1; then
    AGENT=$(command -v ads-agent)
  fi
fi
AGENT_SHA=none
if [[ -n $AGENT ]]; then
  [[ -f $AGENT && -x $AGENT ]] || die "--agent $AGENT: no executable file there"
  AGENT_SHA=$(sha256sum <"$AGENT" | cut -d' ' -f1)
else
  log "no ads-agent found (build it first, or give --agent PATH): the image carries none; ADS places its own in each machine"
fi
# An image that is kept (cached) with another agent works: ADS sends its own
# agent to each machine. Said, with how to bring the image up to date.
say_agent_of() {
  local had=$1
  [[ -n $had ]] || return 0 # an image from before the agent was recorded: cannot tell
  if [[ $AGENT_SHA != none && $had != "$AGENT_SHA" ]]; then
    log "note: the image carries another agent than $AGENT (sha256 ${had:0:12}, not ${AGENT_SHA:0:12}); ADS sends its own to each machine until the image is rebuilt: $0 --force${VARIANT:+ --variant $VARIANT}"
  fi
}


# ---------------------------------------------------------------------------
# An image made by an older version of this script (another ads_format) is
# not reused: it is rebuilt.
# 1. already imported?
if ((FORCE == 0)) && lxc image info "$ALIAS" >/dev/null 2>&1; then
  if lxc image show "$ALIAS" | grep -Eq "^ +ads_format: \"?$FORMAT\"?\$"; then
    log "image $ALIAS cached"
    say_agent_of "$(lxc image show "$ALIAS" | sed -n 's/^ *ads_agent_sha256: "\{0,1\}\([0-9a-f]*\|none\)"\{0,1\}$/\1/p')"
    exit 0
  fi
  log "image $ALIAS was made by an older build-image.sh (not $FORMAT); rebuilding"
fi

# 2. cached tarballs?
if ((FORCE == 0)) && [[ -s "$META_TGZ" && -s "$ROOTFS_TGZ" ]]; then
  if tar -xzOf "$META_TGZ" metadata.yaml 2>/dev/null | grep -Eq "^ +ads_format: $FORMAT\$"; then
    log "importing cached tarballs from $CACHE_DIR"
    say_agent_of "$(tar -xzOf "$META_TGZ" metadata.yaml | sed -n 's/^ *ads_agent_sha256: \([0-9a-f]*\|none\)$/\1/p')"
    import_image "$META_TGZ" "$ROOTFS_TGZ"
    exit 0
  fi
  log "the cached tarballs of $ALIAS were made by an older build-image.sh (not $FORMAT); rebuilding"
fi

# 3. build from scratch
command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found; run scripts/install-deps.sh"
T_ALL=$(now)

# The Debian mirror apt uses for $SUITE: first enabled "deb" entry with suite
# exactly $SUITE in sources.list, sources.list.d/*.list (one-line format) and
# sources.list.d/*.sources (deb822). Files with other names are ignored, as apt does.
mirror_from_sources() {
  local f files=()
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list; do [[ -f $f ]] && files+=("$f"); done
  ((${#files[@]})) && awk -v suite="$SUITE" '
    { sub(/#.*/, "") }
    $1 != "deb" { next }
    {
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }   # skip [options]
      if ($(i + 1) == suite) { print $i; exit }
    }' "${files[@]}"
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk -v suite="$SUITE" '
      function flush() {
        gsub(/[ \t]+/, " ", suites); gsub(/[ \t]+/, " ", uris); gsub(/^ +/, "", uris)
        if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no" && (" " suites " ") ~ (" " suite " ") && uris != "") {
          split(uris, u, " "); print u[1]; found = 1; exit
        }
        types = uris = suites = enabled = ""; field = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]/ { if (field == "uris") uris = uris " " $0; else if (field == "suites") suites = suites " " $0; next }
      {
        key = tolower($0); sub(/:.*/, "", key)
        val = $0; sub(/^[^:]*:[ \t]*/, "", val)
        field = key
        if (key == "types") types = val
        else if (key == "uris") uris = val
        else if (key == "suites") suites = val
        else if (key == "enabled") enabled = val
      }
      END { if (!found) flush() }' "$f"
  done
}
mirror_from_apt() {
  apt-get indextargets --format '$(RELEASE) $(REPO_URI)' 'Identifier: Packages' 2>/dev/null |
    awk -v suite="$SUITE" '$1 == suite { print $2; exit }'
}
MIRROR=""
while read -r m; do
  case $m in http://* | https://* | file:/*) MIRROR=$m; break ;; esac
done < <(mirror_from_sources; mirror_from_apt)
if [[ -z $MIRROR ]]; then
  log "no $SUITE mirror found in the apt configuration; using $FALLBACK_MIRROR"
  MIRROR=$FALLBACK_MIRROR
fi
MIRROR=${MIRROR%/}
log "Debian mirror: $MIRROR"

# Same proxy as apt, if apt has one.
eval "$(apt-config shell APT_HTTP_PROXY Acquire::http::Proxy APT_HTTPS_PROXY Acquire::https::Proxy)"
if [[ -n ${APT_HTTP_PROXY:-} && ${APT_HTTP_PROXY} != DIRECT ]]; then export http_proxy=$APT_HTTP_PROXY; log "using apt's http proxy"; fi
if [[ -n ${APT_HTTPS_PROXY:-} && ${APT_HTTPS_PROXY} != DIRECT ]]; then export https_proxy=$APT_HTTPS_PROXY; log "using apt's https proxy"; fi

WORK=$(mktemp -d /var/tmp/ads-image.XXXXXX)
ROOT=$WORK/rootfs
# Never delete through a mount left behind inside the build tree (debootstrap
# mounts /proc and /sys in the target while it runs).
cleanup() {
  local mnt
  for mnt in $(awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$mnt" 2>/dev/null || true
  done
  if awk -v w="$WORK/" 'index($2, w) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    echo "ads: warning: mounts remain under $WORK; not deleting it" >&2
  else
    rm -rf --one-file-system "$WORK"
  fi
}
trap cleanup EXIT

# --- debootstrap ---------------------------------------------------------------
t0=$(now)
log "debootstrap $SUITE (minbase + $INCLUDE) into $ROOT"
if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
  tail -n 20 "$WORK/debootstrap.log" >&2
  [[ -f $ROOT/debootstrap/debootstrap.log ]] && tail -n 20 "$ROOT/debootstrap/debootstrap.log" >&2
  die "debootstrap failed (log above)"
fi
log "debootstrap done in $(since "$t0")"

# --- customise -----------------------------------------------------------------
t0=$(now)
log "customising rootfs"
for p in usr/bin/tini bin/busybox; do
  [[ -x $ROOT/$p ]] || die "/$p missing in the rootfs"
done

install -d -m 0755 "$ROOT/etc/ads"
# where ADS places the agent's config (and a warm machine's claim mark)
install -d -m 0700 "$ROOT/etc/ads-agent"

cat >"$ROOT/sbin/ads-init" <<'EOF'
#!/bin/sh
# ADS lab container init. Brings up networking, then runs the ADS agent (or
# just sleeps) under tini, which forwards signals and reaps zombies.
# PID 1 must never exit: when it exits the container stops.
#
# Started as PID 1, it first re-executes itself under tini: a PID 1 shell
# silently drops signals it has no handler for, so an "lxc stop" (SIGPWR)
# arriving while udhcpc waits for a lease would be lost and the stop would
# hang. Under tini the stop request reaches this script (or, after exec, the
# agent) at any time. Steady state: PID 1 tini, its child ads-agent or sleep.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

if [ "$$" = 1 ]; then
  if [ -x /usr/bin/tini ]; then
    exec /usr/bin/tini -s -- /sbin/ads-init "$@"
  fi
  echo "ads-init: /usr/bin/tini missing; running without it"
  trap 'exit 0' PWR TERM INT
fi

echo "ads-init: starting"
# /dev/shm, as a full init would mount it (POSIX semaphores: Python's
# multiprocessing, hence Ansible, need it)
if ! busybox grep -q " /dev/shm " /proc/mounts; then
  busybox mkdir -p /dev/shm
  busybox mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm || echo "ads-init: cannot mount /dev/shm"
fi
busybox ip link set lo up || echo "ads-init: cannot bring up lo"
busybox ip link set eth0 up || echo "ads-init: cannot bring up eth0"
# -b: go to the background once a lease is obtained (or after the first
# attempts fail) and keep running to renew it / keep trying.
busybox udhcpc -i eth0 -b -S -s /etc/ads/udhcpc.script \
  -x hostname:"$(busybox hostname)" ||
  echo "ads-init: udhcpc failed to start"

if [ "$$" != 1 ]; then
  if [ -x /usr/local/bin/ads-agent ]; then
    if [ ! -f /etc/ads-agent/agent.json ]; then
      # A warm machine (made ahead by ADS, with no identity) or one nobody
      # configured: its agent reads its config once ADS claims the machine,
      # which places the config and then the mark "claimed" (a complete
      # config). The agent sleeps on inotify until then (no polling).
      echo "ads-init: starting ads-agent, waiting to be claimed"
      exec /usr/local/bin/ads-agent --wait-for /etc/ads-agent/claimed --config /etc/ads-agent/agent.json
    fi
    echo "ads-init: starting ads-agent"
    exec /usr/local/bin/ads-agent --config /etc/ads-agent/agent.json
  fi
  exec sleep infinity
fi
while :; do busybox sleep 3600 & wait $!; done
EOF
chmod 0755 "$ROOT/sbin/ads-init"
rm -rf "$ROOT/sbin/init"
ln -s ads-init "$ROOT/sbin/init"

cat >"$ROOT/etc/ads/udhcpc.script" <<'EOF'
#!/bin/sh
# busybox udhcpc event script: $1 is the event; interface, ip, mask, router,
# dns, domain come from the environment.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
RESOLV=/etc/resolv.conf

case "$1" in
  deconfig)
    busybox ip -4 addr flush dev "$interface"
    busybox ip link set "$interface" up
    ;;
  bound|renew)
    current=$(busybox ip -4 -o addr show dev "$interface" | busybox awk '{ print $4 }')
    if [ "$current" != "$ip/$mask" ]; then
      busybox ip -4 addr flush dev "$interface"
      busybox ip addr add "$ip/$mask" ${broadcast:+broadcast "$broadcast"} dev "$interface"
    fi
    if [ -n "$router" ]; then
      for r in $router; do
        busybox ip route replace default via "$r" dev "$interface" && break
      done
    fi
    if [ -n "$dns" ]; then
      tmp="$RESOLV.ads.$$"
      {
        [ -n "$domain" ] && echo "search $domain"
        for d in $dns; do echo "nameserver $d"; done
      } >"$tmp" && busybox mv -f "$tmp" "$RESOLV"
    fi
    echo "udhcpc: $1 $interface $ip/$mask router ${router:-none} dns ${dns:-none}"
    ;;
  leasefail|nak)
    echo "udhcpc: $1 on $interface"
    ;;
esac
exit 0
EOF
chmod 0755 "$ROOT/etc/ads/udhcpc.script"

# Host files debootstrap copied in; resolv.conf is written by udhcpc, hostname
# and hosts come from LXD templates (see metadata.yaml).
rm -f "$ROOT/etc/resolv.conf"
: >"$ROOT/etc/resolv.conf"
echo localhost >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
: >"$ROOT/etc/machine-id"

# No host key shared by every machine made from this image: the agent makes
# one per machine (agent/ssh_access.h).
rm -f "$ROOT"/etc/ssh/ssh_host_*

# The agent (ADS places its config and secret per machine), and the manifest
# of the files the image carries for ADS (providers/provider.h, kImageManifest).
# What its init can do (providers/provider.h, kImageFeatures): warm machines.
echo warm-claim >"$ROOT/etc/ads/features"
: >"$ROOT/etc/ads/image-files.sha256"
if [[ -n $AGENT ]]; then
  log "the image carries the agent $AGENT (sha256 ${AGENT_SHA:0:12})"
  install -D -m 0755 "$AGENT" "$ROOT/usr/local/bin/ads-agent"
  echo "$AGENT_SHA  /usr/local/bin/ads-agent" >"$ROOT/etc/ads/image-files.sha256"
fi

# Keep future package installs in containers small too.
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/ads-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF

# Slim down.
chroot "$ROOT" /usr/bin/apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin \
  "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/usr/share/lintian \
  "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/lib/dpkg/*-old \
  "$ROOT"/var/log/apt/* "$ROOT"/var/log/bootstrap.log
find "$ROOT/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
find "$ROOT/var/log" -type f -exec truncate -s 0 {} +
rm -rf "${ROOT:?}"/dev/* "${ROOT:?}"/tmp/* "${ROOT:?}"/var/tmp/* "${ROOT:?}"/run/*

# --- metadata ------------------------------------------------------------------
ARCH=$(uname -m)
mkdir -p "$WORK/meta/templates"
cat >"$WORK/meta/metadata.yaml" <<EOF
architecture: $ARCH
creation_date: $(date +%s)
properties:
  os: debian
  release: "12"
  variant: ads-$VARIANT
  ads_format: $FORMAT
  ads_agent_sha256: $AGENT_SHA
  architecture: $ARCH
  description: Debian 12 bookworm for ADS labs, variant $VARIANT (minbase + $INCLUDE; init /sbin/ads-init)
templates:
  /etc/hostname:
    when:
    - create
    - copy
    template: hostname.tpl
  /etc/hosts:
    when:
    - create
    - copy
    template: hosts.tpl
EOF
cat >"$WORK/meta/templates/hostname.tpl" <<'EOF'
{{ container.name }}
EOF
cat >"$WORK/meta/templates/hosts.tpl" <<'EOF'
127.0.0.1	localhost
127.0.1.1	{{ container.name }}
::1		localhost ip6-localhost ip6-loopback
EOF
log "customising done in $(since "$t0") (rootfs $(du -sh --apparent-size "$ROOT" | cut -f1))"

# --- pack --------------------------------------------------------------------
# Split image: the metadata tarball holds metadata.yaml and templates/; the
# rootfs tarball holds the root file system at its top level.
t0=$(now)
log "packing tarballs"
tar -C "$WORK/meta" --numeric-owner --owner=0 --group=0 -czf "$WORK/meta.tar.gz" metadata.yaml templates
tar -C "$ROOT" --numeric-owner --xattrs --xattrs-include='*' --acls -czf "$WORK/rootfs.tar.gz" .
mkdir -p "$CACHE_DIR"
mv -f "$WORK/meta.tar.gz" "$META_TGZ.new"
mv -f "$WORK/rootfs.tar.gz" "$ROOTFS_TGZ.new"
mv -f "$META_TGZ.new" "$META_TGZ"
mv -f "$ROOTFS_TGZ.new" "$ROOTFS_TGZ"
log "tar done in $(since "$t0"): $(du -h "$META_TGZ" | cut -f1) metadata, $(du -h "$ROOTFS_TGZ" | cut -f1) rootfs in $CACHE_DIR"

# --- import ------------------------------------------------------------------
import_image "$META_TGZ" "$ROOTFS_TGZ"
log "image $ALIAS built in $(since "$T_ALL")"

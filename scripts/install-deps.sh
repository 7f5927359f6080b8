#!/usr/bin/env bash
# Installs every Debian 12 package ADS needs to build, run and test.
# Idempotent: apt-get skips what is already installed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PKGS=(
  build-essential cmake ccache pkg-config git ca-certificates curl
  libboost1.81-dev nlohmann-json3-dev libcurl4-openssl-dev libgit2-dev
  libsqlite3-dev sqlite3 libpqxx-dev postgresql libarchive-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libsodium-dev libssl-dev libmbedtls-dev libcjose-dev libjansson-dev clang libclang-rt-14-dev clang-format clang-tidy
  lxd lxcfs dnsmasq-base debootstrap iptables tini busybox-static btrfs-progs
  libssh-dev openssh-server openssh-client iproute2
  chromium
  haproxy caddy
  python3 ansible-core bubblewrap netcat-openbsd
)
# Node.js for the e2e tests: Debian's nodejs and npm, unless a node with its
# npm is already there (NodeSource's nodejs bundles npm and conflicts with
# Debian's npm package).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PKGS+=(nodejs npm)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "ads: installing ${#missing[@]} Debian packages: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "ads: all Debian packages present"
fi
# Debian's caddy package enables a caddy.service of its own (/etc/caddy/
# Caddyfile on :80, admin on localhost:2019). ADS runs its own Caddy beside
# `ads serve` (docs/operators/proxy.md): the packaged one would hold port 80.
if [ -d /run/systemd/system ] && systemctl is-enabled --quiet caddy 2>/dev/null; then
  echo "ads: disabling the packaged caddy.service (ADS starts its own Caddy)"
  systemctl disable --now caddy
fi
# The same for Debian's haproxy package (haproxy.service, /etc/haproxy/
# haproxy.cfg): ADS starts its own HAProxy, the default proxy.
if [ -d /run/systemd/system ] && systemctl is-enabled --quiet haproxy 2>/dev/null; then
  echo "ads: disabling the packaged haproxy.service (ADS starts its own HAProxy)"
  systemctl disable --now haproxy
fi

#!/usr/bin/env bash
# One command for a newcomer on a fresh Debian 12 machine (as root):
# installs everything, builds ADS, prepares LXD and the base image, starts
# `ads serve` on the embedded SQLite store and deploys the bundled example
# lab, then prints its URL.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATA_DIR=${ADS_DATA_DIR:-/var/lib/ads}
LISTEN=${ADS_LISTEN:-127.0.0.1:8089}

bash scripts/install-deps.sh
echo "ads: building"
bash scripts/build.sh
bash scripts/lxd-host.sh
bash scripts/build-image.sh

export ADS_SERVER="http://$LISTEN"
if ! "$ROOT/build/ads" list >/dev/null 2>&1; then
  echo "ads: starting ads serve on $LISTEN (log: $DATA_DIR/ads.log)"
  mkdir -p "$DATA_DIR"
  setsid "$ROOT/build/ads" serve --listen "$LISTEN" --data-dir "$DATA_DIR" >>"$DATA_DIR/ads.log" 2>&1 </dev/null &
  echo $! >"$DATA_DIR/ads.pid"
  for _ in $(seq 1 50); do "$ROOT/build/ads" list >/dev/null 2>&1 && break; sleep 0.2; done
fi
echo "ads: deploying examples/labs/static-site"
"$ROOT/build/ads" deploy "$ROOT/examples/labs/static-site" --name static-site

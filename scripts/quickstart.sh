#!/usr/bin/env bash
# One command for a newcomer on a fresh Debian 12 machine (as root):
# installs everything, builds ADS, prepares LXD and the base image, starts
# `ads serve` on the embedded SQLite store and deploys the bundled example
# lab, then prints its stable URL (through ADS's reverse proxy, HAProxy) and
# fetches it once.
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
export ADS_TOKEN_FILE="$DATA_DIR/admin.token"   # the admin token made at the first start
"$ROOT/build/ads" service start --data-dir "$DATA_DIR" --listen "$LISTEN"
echo "ads: deploying examples/labs/static-site"
# a second run finds the lab running already (its name is taken: 409)
ID=$("$ROOT/build/ads" list --name static-site --state running | awk 'NR == 2 {print $1}')
if [ -z "$ID" ]; then
  "$ROOT/build/ads" deploy "$ROOT/examples/labs/static-site" --name static-site --quiet
  ID=$("$ROOT/build/ads" list --name static-site --state running | awk 'NR == 2 {print $1}')
fi
STABLE=$("$ROOT/build/ads" show "$ID" | awk '$1 == "stable:" {print $2}')
echo "ads: the lab's stable URL is $STABLE (through the reverse proxy; docs/operators/proxy.md)"
curl -fsS --max-time 10 "$STABLE" | head -n 5
echo "ads: the admin API token is in $DATA_DIR/admin.token; the ads command reads it from there (or ADS_TOKEN)"

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
export ADS_TOKEN_FILE="$DATA_DIR/admin.token"   # the admin token made at the first start
"$ROOT/build/ads" service start --data-dir "$DATA_DIR" --listen "$LISTEN"
echo "ads: deploying examples/labs/static-site"
"$ROOT/build/ads" deploy "$ROOT/examples/labs/static-site" --name static-site
echo "ads: the admin API token is in $DATA_DIR/admin.token; the ads command reads it from there (or ADS_TOKEN)"

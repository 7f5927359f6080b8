#!/usr/bin/env bash
# Runs every test: installs what is needed, builds, prepares LXD and the base
# image (cached after the first run), then runs the unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "ads: building"
bash scripts/build.sh
bash scripts/lxd-host.sh
bash scripts/build-image.sh
bash scripts/fuzz.sh 30
cd build
ctest --output-on-failure --timeout 900 "$@"

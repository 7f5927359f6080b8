#!/usr/bin/env bash
# Runs every test: installs what is needed, builds, prepares LXD and the base
# image (cached after the first run), then runs the unit tests (under
# AddressSanitizer + UBSan, the engine's and store's also under
# ThreadSanitizer), the integration, end-to-end (web UI in chromium) and
# script tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "ads: installing the e2e test's npm packages (tests/e2e/package-lock.json)"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
echo "ads: building"
bash scripts/build.sh
bash scripts/lxd-host.sh
bash scripts/build-image.sh
bash scripts/fuzz.sh 30
status=0
# The unit suite runs once, under AddressSanitizer + UBSan (build-asan/), and
# the engine's and the store's unit tests again under ThreadSanitizer
# (build-tsan/); the plain build runs the rest (docs/testing.md, "Sanitizers").
# Each part runs even when one before it failed; the exit status says if any did.
bash scripts/sanitize.sh asan "$@" || status=1
bash scripts/sanitize.sh tsan "$@" || status=1
cd build
ctest --output-on-failure --timeout 900 -LE unit "$@" || status=1
echo "ads: e2e screenshots (if the e2e tests ran): $(pwd)/e2e-screenshots"
exit "$status"

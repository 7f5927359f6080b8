#!/usr/bin/env bash
# Runs every test: installs what is needed, builds, prepares LXD and the base
# image (cached after the first run), then runs the unit, integration and
# end-to-end (web UI in chromium) tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "ads: installing the e2e test's npm packages (tests/e2e/package-lock.json)"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
echo "ads: building"
bash scripts/build.sh
bash scripts/lxd-host.sh
bash scripts/build-image.sh
bash scripts/build-image.sh --variant build  # playbook labs (tests/integration/ansible_lab_test.cpp)
bash scripts/fuzz.sh 30
cd build
status=0
ctest --output-on-failure --timeout 900 "$@" || status=$?
echo "ads: e2e screenshots (if the e2e tests ran): $(pwd)/e2e-screenshots"
exit "$status"

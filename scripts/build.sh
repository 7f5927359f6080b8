#!/usr/bin/env bash
# Configures and builds ADS into build/ (Release with debug info).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
LAUNCHER=()
if command -v ccache >/dev/null; then
  # Several checkouts on one machine share one cache (paths made relative).
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(cd .. && pwd)}
  # and the build directory's own path stays out of the hash (with -g ccache
  # hashes it by default, so no two checkouts ever shared an entry)
  export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${LAUNCHER[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" "$@"

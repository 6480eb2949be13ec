#!/usr/bin/env bash
# Installs what sigtracker needs to build and to be tested, on Debian or Ubuntu: system packages
# with apt-get (through sudo when not root), then the npm test dependencies from the lockfile.
# It skips whatever is already there, so it is cheap to run before every build.
#
#   scripts/install-deps.sh          everything the tests and benchmarks need (make test, make bench)
#   scripts/install-deps.sh --build  only what building and running the server needs (make run)
#   scripts/install-deps.sh --package  what the man pages and the Debian package need (make deb,
#                                      make package-test)
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential libssl-dev libsqlite3-dev libhiredis-dev)
mode=${1:-all}
# Man pages (scdoc, man-db), the Debian package (debhelper, dpkg-dev, lintian), its test (curl,
# systemd-analyze from systemd, python3 for scripts/notify-check.py).
PACKAGE_PKGS=(scdoc man-db debhelper dpkg-dev lintian curl systemd python3)
if [ "$mode" = "--package" ]; then
    PKGS+=("${PACKAGE_PKGS[@]}")
elif [ "$mode" != "--build" ]; then
    PKGS+=("${PACKAGE_PKGS[@]}")
    PKGS+=(pkg-config clang libclang-rt-14-dev clang-format libcjson-dev libcmocka-dev sqlite3
           iproute2 util-linux valgrind chromium redis-server redis-tools haproxy nodejs npm)
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PKGS[@]}"; do
    # nodejs/npm may come from elsewhere (nvm, NodeSource): only install them when absent.
    if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
    if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

case $mode in --build | --package) exit 0 ;; esac

# npm packages: only the tests and benchmarks use them. --ignore-scripts because webtorrent's
# dependencies run install scripts that need pnpm or the network; none is needed here
# (node-datachannel 0.33.4 ships its binary as an npm platform package).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "install-deps: npm ci"
    npm ci --ignore-scripts --no-audit --no-fund
fi

#!/usr/bin/env bash
# Builds the Debian package from a copy of the tree, so that dpkg-buildpackage, which writes its
# results to the parent of the source directory, writes them under OUT and nowhere else:
#
#   OUT/src/sigtracker-VERSION/   the copy (without build/, node_modules, .git)
#   OUT/sigtracker_VERSION_ARCH.deb, .buildinfo, .changes, and lintian.txt
#
#   scripts/build-deb.sh [OUT]      (default build/deb; make deb)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build/deb}")

version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
src="$out/src/sigtracker-$version"

rm -rf "$out/src"
mkdir -p "$src"
# Everything but what the build makes or fetches; databases left by a local run stay out too.
tar -c --exclude=./build --exclude=./node_modules --exclude=./.git --exclude='*.db' \
    --exclude='*.db-wal' --exclude='*.db-shm' -f - . | tar -x -C "$src" -f -

jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 2 ] && jobs=2
opts="${DEB_BUILD_OPTIONS:-}"
(cd "$src" && DEB_BUILD_OPTIONS="${opts:+$opts }parallel=$jobs" \
    dpkg-buildpackage -us -uc -b)

rm -f "$out"/sigtracker_*
mv "$out/src"/sigtracker_"$version"_* "$out/src"/sigtracker-dbgsym_"$version"_* "$out"/ 2>/dev/null || true
mv "$out/src"/*.deb "$out/src"/*.ddeb "$out"/ 2>/dev/null || true
rm -rf "$out/src"
deb="$out/sigtracker_${version}_$arch.deb"
[ -f "$deb" ] || { echo "build-deb: $deb was not built" >&2; exit 1; }

if command -v lintian >/dev/null; then
    # --fail-on none: make deb reports; scripts/package-test.sh is what fails on errors.
    lintian --fail-on none --info "$deb" | tee "$out/lintian.txt"
fi
echo "build-deb: $deb"

#!/usr/bin/env bash
# Runs the browser client-library tests (tests/clientjs) in headless Chromium against the real
# tracker binary ($SIGTRACKER_BIN, default build/sigtracker). Chromium gathers ICE candidates on
# every interface, so the tests run in a private network namespace with only loopback up; when no
# namespace can be made, they run on the host network with a warning. cluster.test.js also starts
# a private redis-server and two nodes in cluster mode (needs redis-server: scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export SIGTRACKER_BIN="${SIGTRACKER_BIN:-$PWD/build/sigtracker}"
if [ ! -x "$SIGTRACKER_BIN" ]; then
    echo "run-clientjs: no tracker binary at $SIGTRACKER_BIN (run make first)" >&2
    exit 1
fi
if ! command -v "${REDIS_SERVER_BIN:-redis-server}" >/dev/null; then
    echo "run-clientjs: ${REDIS_SERVER_BIN:-redis-server} not found: the cluster tests need it (scripts/install-deps.sh)" >&2
    exit 1
fi
cmd=(node --test --test-concurrency=1 tests/clientjs/)
inner='ip link set lo up && exec "$@"'
if unshare --net true 2>/dev/null; then
    exec unshare --net sh -c "$inner" sh "${cmd[@]}"
elif unshare --map-root-user --net true 2>/dev/null; then
    exec unshare --map-root-user --net sh -c "$inner" sh "${cmd[@]}"
else
    echo "run-clientjs: WARNING: cannot create a network namespace (unshare --net);" \
        "running on the host network, WebRTC may pick non-loopback interfaces" >&2
    exec "${cmd[@]}"
fi

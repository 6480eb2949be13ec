#!/usr/bin/env bash
# Real-client test tier: real WebTorrent clients (bittorrent-tracker's Node Client, the WebTorrent
# 2.x and 3.x browser bundles in headless Chromium) meeting through a tracker, plus negative
# controls proving the checks can fail. See tests/realclients/. With SIGTRACKER_BIN, the same kinds
# of clients also meet across the two nodes of a cluster (cluster.test.mjs: a private redis-server,
# started by the test inside the namespace, and two nodes in cluster mode); without it those tests
# are skipped (the stand-in has no cluster mode).
#
#   scripts/run-realclients.sh                          # against the reference tracker (stand-in)
#   SIGTRACKER_BIN=build/sigtracker scripts/run-realclients.sh   # against our server
#
# Env passed through: SIGTRACKER_BIN, SIGTRACKER_ARGS, TRACKER_NO_RELAY, TRACKER_RECORD,
# CHROMIUM_BIN, REDIS_SERVER_BIN. Extra arguments are handed to `node --test` (for example a single
# test file).
#
# Everything (the tracker included) runs inside a private network namespace with only loopback
# up, so WebRTC ICE can only use 127.0.0.1 and nothing leaves the machine. Prints node's test
# summary; exits non-zero if any test fails.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

if [ -n "${SIGTRACKER_BIN:-}" ]; then
  # Relative paths are relative to the repository root.
  case "$SIGTRACKER_BIN" in /*) ;; *) SIGTRACKER_BIN="$root/$SIGTRACKER_BIN" ;; esac
  if [ ! -x "$SIGTRACKER_BIN" ]; then
    echo "run-realclients: SIGTRACKER_BIN=$SIGTRACKER_BIN is not an executable file" >&2
    exit 2
  fi
  export SIGTRACKER_BIN
  if ! command -v "${REDIS_SERVER_BIN:-redis-server}" >/dev/null; then
    echo "run-realclients: ${REDIS_SERVER_BIN:-redis-server} not found: the cluster tests need it" \
      "(scripts/install-deps.sh)" >&2
    exit 2
  fi
  echo "run-realclients: tracker under test: $SIGTRACKER_BIN ${SIGTRACKER_ARGS:-}"
else
  echo "run-realclients: SIGTRACKER_BIN not set: using the reference bittorrent-tracker stand-in"
fi

if [ ! -d node_modules/bittorrent-tracker ] || [ ! -d node_modules/playwright-core ]; then
  echo "run-realclients: node_modules missing: run 'npm ci --ignore-scripts' first" >&2
  exit 2
fi

if [ "$#" -gt 0 ]; then
  tests=("$@")
else
  tests=(tests/realclients/)
fi
# Quote the test command for the inner shell.
inner="ip link set lo up && exec node --test --test-concurrency=1 --test-reporter=spec"
for a in "${tests[@]}"; do inner+=" $(printf '%q' "$a")"; done

start=$(date +%s)
status=0
if [ "$(id -u)" -eq 0 ] && unshare --net true 2>/dev/null; then
  echo "run-realclients: running in a private network namespace (unshare --net, loopback only)"
  unshare --net bash -c "$inner" || status=$?
elif unshare -Urn true 2>/dev/null; then
  echo "run-realclients: running in a private user+network namespace (unshare -Urn, loopback only)"
  unshare -Urn bash -c "$inner" || status=$?
else
  echo "run-realclients: WARNING: cannot create a network namespace; running on the host" \
    "network (WebRTC may gather candidates on every interface)" >&2
  node --test --test-concurrency=1 --test-reporter=spec "${tests[@]}" || status=$?
fi
end=$(date +%s)

if [ "$status" -eq 0 ]; then
  echo "run-realclients: PASS in $((end - start)) s"
else
  echo "run-realclients: FAIL (exit $status) after $((end - start)) s" >&2
fi
exit "$status"

#!/usr/bin/env bash
# Cluster test tier: several sigtracker nodes sharing one private redis-server (started and
# stopped by the tests themselves, on a unix socket in a tmpdir). See tests/cluster/.
#
#   scripts/run-cluster-tests.sh                         # build/sigtracker, every test file
#   scripts/run-cluster-tests.sh tests/cluster/ids.test.mjs    # some files only
#   SIGTRACKER_BIN=build/asan/sigtracker SIGTRACKER_SANITIZED=1 scripts/run-cluster-tests.sh
#
# Env passed through: SIGTRACKER_BIN (default build/sigtracker; relative to the repository root),
# SIGTRACKER_SANITIZED, REDIS_SERVER_BIN, REDIS_CLI_BIN. Needs node, redis-server and redis-cli,
# and the npm test dependencies (make deps). Exits non-zero if any test fails.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

SIGTRACKER_BIN=${SIGTRACKER_BIN:-build/sigtracker}
case "$SIGTRACKER_BIN" in /*) ;; *) SIGTRACKER_BIN="$root/$SIGTRACKER_BIN" ;; esac
if [ ! -x "$SIGTRACKER_BIN" ]; then
  echo "run-cluster-tests: SIGTRACKER_BIN=$SIGTRACKER_BIN is not an executable file (make build/sigtracker?)" >&2
  exit 2
fi
export SIGTRACKER_BIN

for tool in node "${REDIS_SERVER_BIN:-redis-server}" "${REDIS_CLI_BIN:-redis-cli}"; do
  if ! command -v "$tool" >/dev/null; then
    echo "run-cluster-tests: $tool not found (apt-get install redis-server nodejs)" >&2
    exit 2
  fi
done
if [ ! -d node_modules/ws ]; then
  echo "run-cluster-tests: node_modules/ws missing: run 'make deps' (or npm ci) first" >&2
  exit 2
fi

echo "run-cluster-tests: nodes under test: $SIGTRACKER_BIN ($("${REDIS_SERVER_BIN:-redis-server}" --version | cut -d' ' -f1-3))"
if [ "$#" -eq 0 ]; then
  set -- tests/cluster/
fi
exec node --test --test-concurrency=1 "$@"

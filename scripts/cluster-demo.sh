#!/usr/bin/env bash
# A cluster try-out on one machine: a redis-server on a unix socket and N sigtracker nodes that
# share one port through SO_REUSEPORT (the kernel spreads new connections over them). Ctrl-C
# stops everything. Usage: scripts/cluster-demo.sh [NODES=3] [PORT=8000]
# Redis keeps its data in ./cluster-demo/ (append-only file), so completions survive a restart.
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-3}
port=${2:-8000}
bin=${SIGTRACKER_BIN:-build/sigtracker}
dir=$PWD/cluster-demo
mkdir -p "$dir"
sock=$dir/redis.sock
pids=()
stop() {
    trap - INT TERM EXIT
    echo "cluster-demo: stopping"
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop INT TERM EXIT

redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --dir "$dir" \
    --appendonly yes --save '' --logfile "$dir/redis.log" &
pids+=($!)
for _ in $(seq 50); do
    redis-cli -s "$sock" ping >/dev/null 2>&1 && break
    sleep 0.1
done
redis-cli -s "$sock" ping >/dev/null || { echo "cluster-demo: redis-server did not start (see $dir/redis.log)"; exit 1; }

for i in $(seq "$nodes"); do
    "$bin" --port "$port" --reuse-port --cluster "unix:$sock" --db "$dir/unused-$i.db" \
        2>&1 | sed -u "s/^/[node $i] /" &
    pids+=($!)
done
cat <<TXT
cluster-demo: Redis at unix:$sock, $nodes nodes on port $port (SO_REUSEPORT).
  WebSocket:   ws://127.0.0.1:$port      (any node; each connection lands on one of them)
  Stats:       curl -s http://127.0.0.1:$port/stats.json   (the "cluster" object is cluster-wide)
  Health:      curl -i http://127.0.0.1:$port/health
Press Ctrl-C to stop.
TXT
wait

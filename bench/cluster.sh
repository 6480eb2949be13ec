#!/usr/bin/env bash
# bench/cluster.sh: sigtracker's cluster benchmarks (docs/cluster.md), next to bench/run.sh.
#
# It starts its own redis-server (unix socket only, no TCP port) and sigtracker nodes on loopback
# ports, drives them with bench/build/loadgen and stops everything itself. The parts:
#   1. cluster cost: the WT load of `make bench` part 1 (1,000 connections, aquatic-style) on one
#      standalone node and on two nodes + Redis (connections dealt round-robin over the two
#      nodes' ports, so about half of the relays cross nodes), alternating rounds, medians;
#      messages per CPU-second of the whole cluster (both nodes + Redis) against standalone's;
#   2. cross-node relay latency at a quarter of the cluster's peak send rate (and standalone at
#      the same rate, for reference);
#   3. Redis commands and round trips per announce and per relayed message (CONFIG RESETSTAT,
#      a load, INFO commandstats; divided by the nodes' own /stats.json counters);
#   4. scale: idle connections (60,000) across four nodes on one port (--reuse-port), memory per
#      connection of the whole cluster: (sum of the nodes' RSS + Redis used_memory) / connections.
# Results: a summary table, also written to bench/results/cluster-latest.txt; every run's loadgen
# output, node and Redis logs under bench/results/cluster-<timestamp>/ (gitignored).
# Environment: BENCH_QUICK=1 (about 2.5 minutes instead of about 5), BENCH_CONNS (active
# connections, default 1000), CLUSTER_PARTS (default "1 2 3 4"), CLUSTER_SCALE_CONNS (default
# 60000; split over four loadgen processes), CLUSTER_SCALE_MODES (default "wt st").
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

QUICK=${BENCH_QUICK:-0}
CONNS=${BENCH_CONNS:-1000}
PARTS=${CLUSTER_PARTS:-1 2 3 4}
SCALE_MODES=${CLUSTER_SCALE_MODES:-wt st}
if [ "$QUICK" = 1 ]; then
    ROUNDS=1 DUR=4 WARM=1 QUIET_S=2 SCALE=${CLUSTER_SCALE_CONNS:-12000}
else
    ROUNDS=3 DUR=15 WARM=3 QUIET_S=10 SCALE=${CLUSTER_SCALE_CONNS:-60000}
fi
SCALE_NODES=4
# The idle clients of part 4 are split over this many loadgen processes: one process may hold
# at most ~19,980 descriptors here (ulimit -n), and the nodes take 15,000 connections each.
SCALE_LOADGENS=4
START_S=15
STOP_S=10

LOADGEN=bench/build/loadgen
# The flags of bench/run.sh (see there and docs/benchmarks.md): public-service limits lifted.
SIG_FLAGS=(--log-level warn --max-per-ip 0 --msg-rate 1000000 --msg-burst 1000000
    --signal-rate 1000000 --signal-burst 1000000 --recv-rate 1000000 --recv-burst 1000000
    --min-interval 0 --max-swarms 100000)
# Redis as docs/cluster.md asks an operator to run it (append-only file on, the default
# pub/sub output limits), reachable through a unix socket only.
REDIS_FLAGS=(--port 0 --unixsocketperm 700 --appendonly yes --save '')

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=bench/results/cluster-$STAMP
LOGS=$OUT/logs
mkdir -p "$LOGS"
TMP=$(mktemp -d)
PROBLEMS=()
# shellcheck source=bench/common.sh
. bench/common.sh
OTHERS=()
NODE_PIDS=()
NODE_NAMES=()
NODE_PORTS=()
REDIS_PID=""
REDIS_NAME=""
REDIS_SOCK=""
BG_PIDS=() # background load generators (part 3 and 4)

cleanup() {
    local p
    for p in "${BG_PIDS[@]}" "${NODE_PIDS[@]}" $REDIS_PID; do
        if kill -0 "$p" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null
            wait "$p" 2>/dev/null
        fi
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers (the shared ones are in bench/common.sh) ---------------------------------------------

R="" # the RESULT line of the last load generator run (see get)
ms() { calc "$1" 1000 2; }

# CPU ticks (utime + stime, all threads) of a process, from /proc/PID/stat.
proc_ticks() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    s=${s##*) }
    # shellcheck disable=SC2086
    set -- $s
    echo $((${12} + ${13}))
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---- /stats.json and Redis ----------------------------------------------------------------------

# stats_to FILE PORT: GET /stats.json from the node on PORT into FILE (empty on failure).
stats_to() { curl -s --max-time 3 "http://127.0.0.1:$2/stats.json" >"$1" 2>/dev/null || : >"$1"; }
# jsum "KEY..." FILE...: "KEY=sum ..." over the files; dotted keys reach into "cluster"; NA when
# a file lacks a key or is not JSON.
jsum() {
    node -e '
const fs = require("fs");
const keys = process.argv[1].split(/\s+/).filter(Boolean);
const docs = process.argv.slice(2).map(f => { try { return JSON.parse(fs.readFileSync(f, "utf8")); } catch { return null; } });
console.log(keys.map(k => {
  let sum = 0;
  for (const d of docs) {
    let v = d;
    for (const p of k.split(".")) v = v == null ? undefined : v[p];
    if (typeof v !== "number") return k + "=NA";
    sum += v;
  }
  return k + "=" + sum;
}).join(" "));' "$@"
}
# kv KEY LINE: the value of KEY in a "k=v ..." line.
kv() {
    local v
    v=$(sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2")
    echo "${v:-NA}"
}
sub() { case "$1 $2" in *NA*) echo NA ;; *) echo $(($1 - $2)) ;; esac; }

rcli() { redis-cli -s "$REDIS_SOCK" "$@"; }
# redis_info SECTION FIELD: one field of INFO SECTION.
redis_info() { rcli info "$1" | tr -d '\r' | sed -n "s/^$2://p"; }

start_redis() { # NAME
    REDIS_NAME=$1
    REDIS_SOCK=$TMP/$1.sock
    mkdir -p "$TMP/$1"
    redis-server "${REDIS_FLAGS[@]}" --unixsocket "$REDIS_SOCK" --dir "$TMP/$1" \
        --logfile "$(pwd)/$LOGS/$1.redis.txt" &
    REDIS_PID=$!
    for _ in $(seq 50); do
        rcli ping >/dev/null 2>&1 && return 0
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.1
    done
    problem "$1: redis-server did not start (see $LOGS/$1.redis.txt)"
    return 1
}

stop_redis() {
    [ -n "$REDIS_PID" ] || return 0
    kill -TERM "$REDIS_PID" 2>/dev/null
    local i
    for ((i = 0; i < STOP_S * 10; i++)); do
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
    local n
    n=$(grep -c 'overcoming of output buffer limits' "$LOGS/$REDIS_NAME.redis.txt" 2>/dev/null)
    if [ "${n:-0}" -gt 0 ]; then
        problem "$REDIS_NAME: Redis closed $n node subscriber connection(s) for overcoming the" \
            "pub/sub output buffer limit (see $LOGS/$REDIS_NAME.redis.txt)"
    fi
    REDIS_PID=""
}

# start_node NAME PORT [extra flags]: a sigtracker node (standalone unless the flags say --cluster).
start_node() {
    local name=$1 port=$2
    shift 2
    "$BIN" --host 127.0.0.1 --port "$port" --db "$TMP/$name.db" "${SIG_FLAGS[@]}" "$@" \
        >"$LOGS/$name.node.txt" 2>&1 &
    NODE_PIDS+=($!)
    NODE_NAMES+=("$name")
    NODE_PORTS+=("$port")
}

# wait_nodes N [PORT]: until every node listens and, for a cluster, N nodes see Redis up and one
# another (PORT: a shared --reuse-port port; otherwise each node's own port is asked).
wait_nodes() {
    local want=$1 shared=${2:-} i p ok f=$TMP/wait.json line
    for ((i = 0; i < START_S * 10; i++)); do
        ok=1
        for p in "${NODE_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || { ok=dead; break; }; done
        [ "$ok" = dead ] && break
        local askports=("${NODE_PORTS[@]}")
        [ -n "$shared" ] && askports=("$shared" "$shared" "$shared" "$shared")
        for p in "${askports[@]}"; do
            stats_to "$f" "$p"
            if [ "$want" = 0 ]; then
                [ -s "$f" ] || ok=0
            else
                line=$(jsum "cluster.nodes" "$f")
                grep -q '"redis":"up"' "$f" && [ "$(kv cluster.nodes "$line")" = "$want" ] || ok=0
            fi
        done
        [ "$ok" = 1 ] && return 0
        sleep 0.1
    done
    problem "nodes ${NODE_NAMES[*]}: not up (a cluster of $want) within ${START_S}s"
    return 1
}

LOST=0 # Redis connections the nodes lost, by their logs, in the last stop_nodes
stop_nodes() {
    local k pid name n
    LOST=0
    for k in "${!NODE_PIDS[@]}"; do
        kill -TERM "${NODE_PIDS[$k]}" 2>/dev/null
    done
    for k in "${!NODE_PIDS[@]}"; do
        pid=${NODE_PIDS[$k]}
        name=${NODE_NAMES[$k]}
        await_exit "$pid" "$STOP_S" "$name" "$LOGS/$name.node.txt"
        # Every outage, whatever ended the connection (Redis closing it, or the node dropping it
        # over its own backlog), is logged once as the state change to "Redis unreachable".
        n=$(grep -c 'Redis unreachable' "$LOGS/$name.node.txt")
        LOST=$((LOST + ${n:-0}))
        if [ "${n:-0}" -gt 0 ]; then
            problem "$name: lost Redis $n time(s) (first cause: $(grep -B1 'Redis unreachable' \
                "$LOGS/$name.node.txt" | head -n 1 | sed 's/^[^ ]* [^ ]* //'))"
        fi
    done
    NODE_PIDS=()
    NODE_NAMES=()
    NODE_PORTS=()
}

stop_all() {
    stop_nodes
    stop_redis
}

# Checks a RESULT line for errors, closes, failed opens and drops; records the noise.
# run_lg NAME PORTS PIDS [loadgen options]: runs the load generator in the foreground, leaving its
# RESULT line in R.
run_lg() {
    local name=$1 ports=$2 pids=$3
    shift 3
    local out="$LOGS/$name.txt"
    wait_quiet
    echo "+ $LOADGEN --port $ports --server-pid $pids $*" >"$out"
    "$LOADGEN" --port "$ports" --server-pid "$pids" "$@" >>"$out" 2>&1
    R=$(grep '^RESULT ' "$out" | tail -n 1)
    if [ -z "$R" ]; then
        problem "$name: the load generator printed no RESULT (see $out)"
        return 1
    fi
    check_result "$name" "$out" "the nodes"
    log "$(printf '  %-26s %9s msg/s %9s msg/cpu-s offer p50/p99 %s/%s us, others %s cpu-s' \
        "$name" "$(get msgs_per_s)" "$(get msgs_per_cpu_s)" "$(get offer_p50_us)" \
        "$(get offer_p99_us)" "$(get others_cpu_s)")"
}

# Waits until a background loadgen's output (file $1) says its connections are open; 1 if it
# exited first or took longer than $2 s.
wait_ramp() {
    local f=$1 limit=$2 pid=$3 i
    for ((i = 0; i < limit * 10; i++)); do
        grep -q 'connections open after' "$f" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# The cluster of parts 1-3: Redis and two nodes on their own ports. Sets CL_PORTS "A,B" and
# CL_PIDS "A,B,redis".
CL_PORTS=""
CL_PIDS=""
start_cluster2() { # NAME
    start_redis "$1-redis" || return 1
    local pa pb
    pa=$(free_port)
    start_node "$1-node-a" "$pa" --cluster "unix:$REDIS_SOCK"
    pb=$(free_port)
    while [ "$pb" = "$pa" ]; do pb=$(free_port); done
    start_node "$1-node-b" "$pb" --cluster "unix:$REDIS_SOCK"
    if ! wait_nodes 2; then
        stop_all
        return 1
    fi
    CL_PORTS="$pa,$pb"
    CL_PIDS="${NODE_PIDS[0]},${NODE_PIDS[1]},$REDIS_PID"
}
start_standalone() { # NAME
    local p
    p=$(free_port)
    start_node "$1" "$p"
    if ! wait_nodes 0; then
        stop_nodes
        return 1
    fi
    CL_PORTS=$p
    CL_PIDS=${NODE_PIDS[0]}
}
# Node counters over a run: "key=sum ..." of the nodes' /stats.json.
NODE_KEYS="messages_in messages_out relayed cluster.remote_out cluster.remote_in \
cluster.redis_commands cluster.redis_published cluster.redis_received cluster.redis_reconnects \
cluster.redis_rejected"
node_counters() { # FILE-PREFIX
    local k files=()
    for k in "${!NODE_PORTS[@]}"; do
        stats_to "$1.$k.json" "${NODE_PORTS[$k]}"
        files+=("$1.$k.json")
    done
    jsum "$NODE_KEYS" "${files[@]}"
}

# ---- the suite ----------------------------------------------------------------------------------

make -s all >/dev/null || { echo "cluster.sh: building sigtracker failed" >&2; exit 1; }
make -s -C bench >/dev/null || { echo "cluster.sh: building the load generator failed" >&2; exit 1; }
for tool in redis-server redis-cli curl node; do
    command -v "$tool" >/dev/null || { echo "cluster.sh: $tool not found" >&2; exit 1; }
done
# One binary for the whole run, even if build/sigtracker is rebuilt meanwhile.
BIN=$TMP/sigtracker
cp build/sigtracker "$BIN"
START=$(date +%s)
TREE="$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo '+uncommitted src changes')"
log "cluster bench: results in $OUT (quick=$QUICK rounds=$ROUNDS duration=${DUR}s parts: $PARTS)"
log "cluster bench: tree $TREE; $(redis-server --version | cut -d' ' -f1-3);" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

# sample_omem FILE: every 0.5 s, the largest output buffer Redis holds for a node's subscriber
# connection (the cross-node traffic it has not read yet), in bytes; the maximum ends in FILE.
sample_omem() {
    local max=0 v
    while kill -0 "$REDIS_PID" 2>/dev/null; do
        v=$(rcli client list 2>/dev/null | tr ' ' '\n' | sed -n 's/^omem=//p' | sort -n | tail -n 1)
        [ -n "$v" ] && [ "$v" -gt "$max" ] && max=$v && echo "$max" >"$1"
        sleep 0.5
    done
}

# ---- 1. cluster cost ----------------------------------------------------------------------------
declare -A M
FIELDS="mpc rpc mps sent cpu rss op50 op99 ox50 ox99 xfrac remote err recon redis_share oth omem drop"
for k in sa cl; do for f in $FIELDS; do M[$k.$f]=""; done; done
add() { M[$1.$2]="${M[$1.$2]} $3"; }
if want 1; then
    log "[1] cluster cost: WT, $CONNS connections, standalone vs 2 nodes + Redis, $ROUNDS rounds"
    for ((round = 1; round <= ROUNDS; round++)); do
        for k in sa cl; do
            name=cost-$k-r$round
            if [ $k = sa ]; then start_standalone "$name" || continue; else start_cluster2 "$name" || continue; fi
            c0=$(node_counters "$TMP/c0")
            declare -A T0=()
            for p in ${CL_PIDS//,/ }; do T0[$p]=$(proc_ticks "$p"); done
            echo 0 >"$TMP/omem"
            if [ $k = cl ]; then
                sample_omem "$TMP/omem" &
                BG_PIDS+=($!)
            fi
            run_lg "$name" "$CL_PORTS" "$CL_PIDS" --mode wt --connections "$CONNS" \
                --duration "$DUR" --warmup "$WARM" --server-stats
            ok=$?
            c1=$(node_counters "$TMP/c1")
            # Redis's share of the cluster's CPU over the whole run (ramp to end).
            tot=0 rt=0
            for p in ${CL_PIDS//,/ }; do
                d=$(($(proc_ticks "$p") - T0[$p]))
                tot=$((tot + d))
                [ "$p" = "$REDIS_PID" ] && rt=$d
            done
            stop_all
            wait 2>/dev/null # the sampler ends with Redis
            [ $ok = 0 ] || continue
            add $k mpc "$(get msgs_per_cpu_s)"
            add $k rpc "$(get recv_per_cpu_s)"
            add $k mps "$(get msgs_per_s)"
            add $k sent "$(get sent_per_s)"
            add $k cpu "$(calc "$(get server_cpu_s)" "$(get window_s)" 2)"
            add $k rss "$(get rss_kb)"
            add $k op50 "$(get offer_p50_us)"
            add $k op99 "$(get offer_p99_us)"
            add $k err "$(($(get errors) + $(get closes)))"
            add $k oth "$(get others_cpu_s)"
            add $k drop "$(get srv_dropped)"
            if [ $k = cl ]; then
                add $k ox50 "$(get offer_x_p50_us)"
                add $k ox99 "$(get offer_x_p99_us)"
                # Offers delivered across nodes / all offers delivered, in the window.
                add $k xfrac "$(calc "$(get offer_x_n)*100" "$(get offer_n)" 1)"
                # Relays that crossed nodes / all relays, whole run, from the nodes' counters.
                add $k remote "$(calc "$(sub "$(kv cluster.remote_out "$c1")" \
                    "$(kv cluster.remote_out "$c0")")*100" "$(sub "$(kv relayed "$c1")" \
                    "$(kv relayed "$c0")")" 1)"
                add $k recon "$LOST"
                add $k redis_share "$(calc "$rt*100" "$tot" 1)"
                add $k omem "$(calc "$(cat "$TMP/omem")" 1048576 1)"
            fi
        done
    done
fi
declare -A MED
for k in sa cl; do for f in $FIELDS; do
    # shellcheck disable=SC2086
    MED[$k.$f]=$(median ${M[$k.$f]})
done; done
COST_RATIO=$(calc "${MED[cl.mpc]}" "${MED[sa.mpc]}" 2)

# ---- 2. cross-node latency at a quarter of the cluster's peak ------------------------------------
LAT_ROWS=()
LAT_RATE=NA
LAT_NOISY_PCT=30
if [ "${MED[cl.sent]}" != NA ]; then
    LAT_RATE=$(awk "BEGIN { printf \"%d\", ${MED[cl.sent]} / 4 }")
elif want 2 || want 3; then
    # Without part 1: the cluster's peak sent rate measured on this machine on 2026-12-04.
    LAT_RATE=${CLUSTER_LAT_RATE:-40000}
fi
if want 2; then
    log "[2] cross-node relay latency at a quarter of the cluster's peak: $LAT_RATE messages/s sent"
    for k in cl sa; do
        best="" best_noise=1000000
        for try in 1 2; do
            name=lat-$k-$try
            if [ $k = sa ]; then start_standalone "$name" || continue; else start_cluster2 "$name" || continue; fi
            run_lg "$name" "$CL_PORTS" "$CL_PIDS" --mode wt --connections "$CONNS" \
                --rate "$LAT_RATE" --duration "$DUR" --warmup "$WARM" --server-stats
            ok=$?
            stop_all
            [ $ok = 0 ] || continue
            recon=$LOST
            [ $k = sa ] && recon=-
            noise=$(calc "$(get others_cpu_s)*100" "$(get window_s)" 0)
            if [ "$noise" != NA ] && [ "$noise" -lt "$best_noise" ]; then
                best="$R recon=$recon"
                best_noise=$noise
            fi
            [ "$noise" != NA ] && [ "$noise" -le "$LAT_NOISY_PCT" ] && break
        done
        R=$best
        [ -n "$R" ] || continue
        label="2 nodes + Redis"
        [ $k = sa ] && label="standalone, same rate"
        if [ $k = cl ]; then
            LAT_X99=$(get offer_x_p99_us)
            cross="$(ms "$(get offer_x_p50_us)")/$(ms "$(get offer_x_p99_us)") ($(get offer_x_n))"
            local_="$(ms "$(get offer_l_p50_us)")/$(ms "$(get offer_l_p99_us)")"
        else
            cross="-"
            local_="$(ms "$(get offer_p50_us)")/$(ms "$(get offer_p99_us)")"
        fi
        LAT_ROWS+=("$(printf '%-24s %8s %9s %10s %7s %20s %13s %13s %15s %7s' "$label" \
            "$(get sent_per_s)" "$(get msgs_per_cpu_s)" \
            "$(calc "$(get server_cpu_s)*100" "$(get window_s)" 0)%" "$best_noise%" "$cross" \
            "$local_" "$(ms "$(get ann_p50_us)")/$(ms "$(get ann_p99_us)")" \
            "$(ms "$(get answer_p50_us)")/$(ms "$(get answer_p99_us)")" "$(get recon)")")
    done
fi

# ---- 3. Redis commands and round trips per announce and per relay --------------------------------
CMD_TABLES=()
cmd_run() { # NAME RATE(or 0)
    local name=$1 rate=$2 out="$LOGS/$1.txt" rateopt=() lgpid
    [ "$rate" != 0 ] && rateopt=(--rate "$rate")
    start_cluster2 "$name" || return
    wait_quiet
    echo "+ $LOADGEN --port $CL_PORTS --server-pid $CL_PIDS --mode wt --connections $CONNS" \
        "${rateopt[*]} --duration $((DUR + 2)) --warmup $WARM" >"$out"
    "$LOADGEN" --port "$CL_PORTS" --server-pid "$CL_PIDS" --mode wt --connections "$CONNS" \
        "${rateopt[@]}" --duration $((DUR + 2)) --warmup "$WARM" >>"$out" 2>&1 &
    lgpid=$!
    BG_PIDS+=("$lgpid")
    if ! wait_ramp "$out" 60 "$lgpid"; then
        problem "$name: the load generator did not open its connections (see $out)"
        wait "$lgpid"
        stop_all
        return
    fi
    # Inside loadgen's window (it opens WARM s after the ramp and lasts DUR + 2 s): counters are
    # taken over DUR s from WARM + 1 s after the ramp, by the nodes and by Redis at the same time.
    sleep $((WARM + 1))
    local c0 c1 cs r1 w1 t0 t1 bi bo
    c0=$(node_counters "$TMP/c0")
    rcli config resetstat >/dev/null
    t0=$(date +%s.%N)
    sleep "$DUR"
    cs=$(rcli info commandstats | tr -d '\r')
    r1=$(redis_info stats total_reads_processed)
    w1=$(redis_info stats total_writes_processed)
    bi=$(redis_info stats total_net_input_bytes)
    bo=$(redis_info stats total_net_output_bytes)
    t1=$(date +%s.%N)
    c1=$(node_counters "$TMP/c1")
    wait "$lgpid"
    R=$(grep '^RESULT ' "$out" | tail -n 1)
    stop_all
    [ -n "$R" ] || { problem "$name: the load generator printed no RESULT (see $out)"; return; }
    check_result "$name" "$out" "the nodes"
    local msgs rel rem recon ann_share ann secs
    msgs=$(sub "$(kv messages_in "$c1")" "$(kv messages_in "$c0")")
    rel=$(sub "$(kv relayed "$c1")" "$(kv relayed "$c0")")
    rem=$(sub "$(kv cluster.remote_out "$c1")" "$(kv cluster.remote_out "$c0")")
    recon=$(sub "$(kv cluster.redis_reconnects "$c1")" "$(kv cluster.redis_reconnects "$c0")")
    [ "$recon" != 0 ] && problem "$name: the nodes reconnected to Redis $recon time(s) while counted"
    # Every WT message a client sends is an announce: with offers, or carrying an answer. The
    # loadgen's own counts (its window) split the nodes' messages_in into the two.
    ann_share=$(calc "$(get announces)" "$(get announces)+$(get answers_sent)" 6)
    ann=$(awk "BEGIN { printf \"%d\", $msgs * $ann_share }")
    secs=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")
    local t
    t="   $name: ${secs}s counted; the nodes received $msgs messages ($ann announces with offers,"
    t+=$'\n'"   the rest answers), relayed $rel ($rem to the other node, $(calc "$rem*100" "$rel" 1)%);"
    t+=" rate $(calc "$msgs" "$secs" 0) messages/s in"
    t+=$'\n'"$(printf '   %-28s %10s %13s %13s %13s %12s' "Redis command (INFO commandstats)" calls \
        "per announce" "per message" "per relay" "per cross")"
    local line cmd calls total=0
    while IFS= read -r line; do
        cmd=$(sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/\1/p' <<<"$line")
        calls=$(sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\),.*/\2/p' <<<"$line")
        [ -n "$cmd" ] || continue
        case "$cmd" in config*|info) continue ;; esac # the benchmark's own
        total=$((total + calls))
        t+=$'\n'"$(printf '   %-28s %10s %13s %13s %13s %12s' "$cmd" "$calls" "$(calc "$calls" "$ann" 4)" \
            "$(calc "$calls" "$msgs" 4)" "$(calc "$calls" "$rel" 4)" "$(calc "$calls" "$rem" 4)")"
    done < <(grep '^cmdstat_' <<<"$cs" | sort -t= -k2 -n -r)
    row() { printf '   %-28s %10s %13s %13s %13s %12s' "$1" "$2" "$(calc "$2" "$ann" 4)" \
        "$(calc "$2" "$msgs" 4)" "$(calc "$2" "$rel" 4)" "$(calc "$2" "$rem" 4)"; }
    t+=$'\n'"$(row "all (scripts' inner calls too)" "$total")"
    t+=$'\n'"$(row "sent by the nodes" "$(sub "$(kv cluster.redis_commands "$c1")" \
        "$(kv cluster.redis_commands "$c0")")")"
    t+=$'\n'"$(row "  of which PUBLISH" "$(sub "$(kv cluster.redis_published "$c1")" \
        "$(kv cluster.redis_published "$c0")")")"
    t+=$'\n'"$(row "channel messages received" "$(sub "$(kv cluster.redis_received "$c1")" \
        "$(kv cluster.redis_received "$c0")")")"
    t+=$'\n'"$(row "Redis reads (~round trips)" "$r1")"
    t+=$'\n'"$(row "Redis writes (replies+pushes)" "$w1")"
    t+=$'\n'"$(row "bytes into Redis" "$bi")"
    t+=$'\n'"$(row "bytes out of Redis" "$bo")"
    t+=$'\n'"   (through Redis per second: $(calc "$bi" "$secs*1048576" 1) MB in,"
    t+=" $(calc "$bo" "$secs*1048576" 1) MB out)"
    CMD_TABLES+=("$t")
}
if want 3; then
    log "[3] Redis commands per announce and per relay (at $LAT_RATE messages/s, and saturated)"
    [ "$LAT_RATE" != NA ] && cmd_run cmds-rate "$LAT_RATE"
    cmd_run cmds-saturated 0
fi

# ---- 4. scale: idle connections across four nodes on one port ------------------------------------
SCALE_ROWS=()
SCALE_NOTES=()
# cluster_mem: "nodes_rss_kb redis_used_b redis_rss_b" now.
cluster_mem() {
    local sum=0 p
    for p in "${NODE_PIDS[@]}"; do sum=$((sum + $(rss_kb "$p"))); done
    echo "$sum $(redis_info memory used_memory) $(redis_info memory used_memory_rss)"
}
# wait_held N PORT: until the cluster-wide connection and peer counts (heartbeats) reach N and
# stay put for 2 s; the nodes' mirrors are then complete. Returns 1 after 60 s.
wait_held() {
    local n=$1 port=$2 i line last="" same=0 f=$TMP/held.json
    for ((i = 0; i < 120; i++)); do
        stats_to "$f" "$port"
        line=$(jsum "cluster.connections cluster.peers" "$f")
        if [ "$(kv cluster.connections "$line")" != NA ] &&
            [ "$(kv cluster.connections "$line")" -ge "$n" ] &&
            [ "$(kv cluster.peers "$line")" -ge "$n" ]; then
            if [ "$line" = "$last" ]; then same=$((same + 1)); else same=0; fi
            [ $same -ge 4 ] && return 0
        fi
        last=$line
        sleep 0.5
    done
    return 1
}
scale_run() { # MODE
    local mode=$1 name=scale-$1 port per k i pids=() outs=() m0 m1 m2 half
    per=$((SCALE / SCALE_LOADGENS))
    half=$((SCALE_LOADGENS / 2))
    start_redis "$name-redis" || return
    port=$(free_port)
    for ((k = 1; k <= SCALE_NODES; k++)); do
        start_node "$name-node$k" "$port" --cluster "unix:$REDIS_SOCK" --reuse-port
    done
    wait_nodes "$SCALE_NODES" "$port" || { stop_all; return; }
    # Warm-up as in run.sh part 4: 200 connections opened and closed, so code pages are resident.
    "$LOADGEN" --port "$port" --mode "$mode" --connections 0 --idle 200 --duration 1 --warmup 1 \
        >"$LOGS/$name-warmup.txt" 2>&1
    sleep 3 # the closes' releases and records settle; a heartbeat passes
    wait_quiet
    read -r -a m0 <<<"$(cluster_mem)"
    local held=0 step base lgargs
    for step in 1 2; do
        for ((k = (step - 1) * half; k < step * half; k++)); do
            # Sources 127.0.0.(2 + 3k).. at 5,000 per address: each process its own addresses.
            base=$((2 + k * ((per + 4999) / 5000)))
            lgargs=(--port "$port" --mode "$mode" --connections 0 --idle "$per" --addr-base "$base"
                --per-addr 5000 --duration 3600 --warmup 0 --ramp-timeout 120 --req-timeout 60)
            echo "+ $LOADGEN ${lgargs[*]}" >"$LOGS/$name-lg$k.txt"
            "$LOADGEN" "${lgargs[@]}" >>"$LOGS/$name-lg$k.txt" 2>&1 &
            pids[k]=$!
            outs[k]=$LOGS/$name-lg$k.txt
            BG_PIDS+=("${pids[k]}")
        done
        for ((k = (step - 1) * half; k < step * half; k++)); do
            wait_ramp "${outs[k]}" 150 "${pids[k]}" ||
                problem "$name: loadgen $k did not finish opening its connections (see ${outs[k]})"
        done
        held=$((step * half * per))
        wait_held "$held" "$port" ||
            problem "$name: the cluster's counts did not settle at $held connections and peers"
        sleep 2
        if [ $step = 1 ]; then read -r -a m1 <<<"$(cluster_mem)"; else read -r -a m2 <<<"$(cluster_mem)"; fi
        [ $step = 1 ] && H1=$held
    done
    # Per node: connections (open descriptors) and RSS.
    local per_node="" p
    for p in "${NODE_PIDS[@]}"; do
        per_node+=" $(ls "/proc/$p/fd" | wc -l)/$(($(rss_kb "$p") / 1024))MB"
    done
    local keys
    keys=$(rcli dbsize)
    # Stop the load generators: each reports what it held.
    local really=0 failed=0
    for ((k = 0; k < SCALE_LOADGENS; k++)); do kill -TERM "${pids[k]}" 2>/dev/null; done
    for ((k = 0; k < SCALE_LOADGENS; k++)); do
        wait "${pids[k]}"
        R=$(grep '^RESULT ' "${outs[k]}" | tail -n 1)
        [ -n "$R" ] || { problem "$name: loadgen $k printed no RESULT"; continue; }
        check_result "$name-lg$k" "${outs[k]}" "the nodes"
        really=$((really + $(get held)))
        failed=$((failed + $(get connect_failures) + $(get upgrade_failures)))
    done
    [ "$really" -lt "$held" ] && problem "$name: held $really connections, not $held"
    stop_all
    local d2n d2r d12n d12r
    d2n=$(((m2[0] - m0[0]) * 1024))
    d2r=$((m2[1] - m0[1]))
    d12n=$(((m2[0] - m1[0]) * 1024))
    d12r=$((m2[1] - m1[1]))
    SCALE_ROWS+=("$(printf '%-4s %7s %6s %12s %12s %12s %10s %10s %10s %10s' "$mode" "$really" \
        "$SCALE_NODES" "$((m0[0] / 1024))/$((m2[0] / 1024))" \
        "$((m0[1] / 1048576))/$((m2[1] / 1048576))" "$((m2[2] / 1048576))" \
        "$(calc "$d2n" "$held" 0)" "$(calc "$d2r" "$held" 0)" "$(calc "$d2n+$d2r" "$held" 0)" \
        "$(calc "$d12n+$d12r" "$((held - H1))" 0)")")
    local note="   $mode: per node (open descriptors/RSS):$per_node; Redis keys: $keys;"
    note+=$'\n'"      slope ${H1}->$held: nodes $(calc "$d12n" "$((held - H1))" 0) B + Redis"
    note+=" $(calc "$d12r" "$((held - H1))" 0) B per connection; failed opens: $failed"
    SCALE_NOTES+=("$note")
}
if want 4; then
    log "[4] scale: $SCALE idle connections over $SCALE_NODES nodes on one port (--reuse-port)"
    if [ $((SCALE / SCALE_LOADGENS)) -gt $(($(ulimit -n) - 100)) ]; then
        problem "part 4: $((SCALE / SCALE_LOADGENS)) connections per loadgen exceed ulimit -n"
    else
        for mode in $SCALE_MODES; do scale_run "$mode"; done
    fi
fi

# ---- the summary --------------------------------------------------------------------------------

ELAPSED=$(($(date +%s) - START))
verdict() { # VALUE OP TARGET
    [ "$1" = NA ] && { echo "not measured"; return; }
    if awk "BEGIN { exit !($1 $2 $3) }"; then echo met; else echo MISSED; fi
}
{
    echo "sigtracker cluster benchmark summary, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
        "$(uname -r), $(redis-server --version | cut -d' ' -f3), tree $TREE"
    echo "quick=$QUICK, $ROUNDS round(s) of ${DUR}s after ${WARM}s warm-up; took ${ELAPSED}s;" \
        "logs in $OUT"
    echo "node flags: ${SIG_FLAGS[*]} --cluster unix:<sock>"
    echo "redis-server flags: ${REDIS_FLAGS[*]} --unixsocket <sock>"
    # shellcheck disable=SC2068
    echo "noise: other processes used $(median ${OTHERS[@]})% of one core in the median window" \
        "(max $(printf '%s\n' ${OTHERS[@]} | grep -v NA | sort -g | tail -n 1)%)"
    if want 1; then
        echo
        echo "1. Cluster cost: WT load of make bench part 1 ($CONNS connections, 10 offers per announce,"
        echo "   10,000 Gamma-skewed torrents, one request in flight), medians of $ROUNDS alternating"
        echo "   round(s); cluster = 2 nodes + Redis, connections dealt round-robin over the nodes;"
        echo "   CPU = both nodes + Redis (/proc/PID/stat, the loadgen's window)"
        printf '%-48s %12s %16s %7s\n' metric standalone "2 nodes + Redis" ratio
        r() { printf '%-48s %12s %16s %7s\n' "$1" "$2" "$3" "$(calc "$3" "$2" 2)"; }
        r "messages per CPU-second (sent+recv)" "${MED[sa.mpc]}" "${MED[cl.mpc]}"
        r "messages received per CPU-second" "${MED[sa.rpc]}" "${MED[cl.rpc]}"
        r "messages per second (sent+recv)" "${MED[sa.mps]}" "${MED[cl.mps]}"
        r "messages sent per second" "${MED[sa.sent]}" "${MED[cl.sent]}"
        r "CPU (cores, all server processes)" "${MED[sa.cpu]}" "${MED[cl.cpu]}"
        r "RSS at the end, all server processes (kB)" "${MED[sa.rss]}" "${MED[cl.rss]}"
        r "offer relay p50 (ms, saturated: queueing)" "$(ms "${MED[sa.op50]}")" "$(ms "${MED[cl.op50]}")"
        r "offer relay p99 (ms, saturated)" "$(ms "${MED[sa.op99]}")" "$(ms "${MED[cl.op99]}")"
        printf '%-48s %12s %16s\n' "cross-node offers p50/p99 (ms)" - \
            "$(ms "${MED[cl.ox50]}")/$(ms "${MED[cl.ox99]}")"
        printf '%-48s %12s %16s\n' "offers delivered across nodes (% of delivered)" - "${MED[cl.xfrac]}%"
        printf '%-48s %12s %16s\n' "relays sent to the other node (remote_out %)" - "${MED[cl.remote]}%"
        printf '%-48s %12s %16s\n' "Redis's share of the cluster's CPU" - "${MED[cl.redis_share]}%"
        printf '%-48s %12s %16s\n' "Redis outages seen by the nodes per run" - "${MED[cl.recon]}"
        printf '%-48s %12s %16s\n' "largest unread subscriber backlog in Redis (MB)" - "${MED[cl.omem]}"
        printf '%-48s %12s %16s\n' "messages dropped by the nodes (window)" "${MED[sa.drop]}" \
            "${MED[cl.drop]}"
        printf '%-48s %12s %16s\n' "errors + closes per run" "${MED[sa.err]}" "${MED[cl.err]}"
        echo "   per-round values: standalone mpc${M[sa.mpc]}; cluster mpc${M[cl.mpc]};" \
            "Redis outages${M[cl.recon]}; backlog MB${M[cl.omem]}; dropped${M[cl.drop]}"
        echo "   target: cluster >= 0.5 x standalone messages per CPU-second: ratio $COST_RATIO," \
            "$(verdict "$COST_RATIO" '>=' 0.5)"
    fi
    if want 2; then
        echo
        echo "2. Relay latency at a quarter of the cluster's peak send rate (--rate $LAT_RATE); ms;"
        echo "   \"cross\" = offers whose sender and receiver are on different nodes; \"outages\" = times"
        echo "   the nodes logged Redis as unreachable in the run; msg/CPU-s includes Redis"
        printf '%-24s %8s %9s %10s %7s %20s %13s %13s %15s %7s\n' run "sent/s" "msg/CPU-s" \
            "CPU" others "cross p50/p99 (n)" "local p50/99" "ann p50/p99" "answer p50/p99" outages
        printf '%s\n' "${LAT_ROWS[@]}"
        echo "   target: cross-node p99 < 5 ms: $(ms "${LAT_X99:-NA}") ms," \
            "$(verdict "$(ms "${LAT_X99:-NA}")" '<' 5)"
    fi
    if want 3; then
        echo
        echo "3. Redis commands and round trips: CONFIG RESETSTAT inside the loadgen's window, INFO"
        echo "   commandstats after ${DUR}s; divided by the nodes' /stats.json deltas over the same"
        echo "   seconds (messages_in: every WT message is an announce; \"announce\" = one with"
        echo "   offers; relayed; cluster.remote_out = relays to the other node). Commands Lua"
        echo "   scripts call count under their own names too. Redis reads = read events on client"
        echo "   sockets (one per pipelined batch it receives, ~ round trips); writes include"
        echo "   pub/sub pushes to the subscribers."
        printf '%s\n\n' "${CMD_TABLES[@]}"
    fi
    if want 4; then
        echo
        echo "4. Scale: idle connections (each: upgrade, ID, one announce into one swarm of 10,000"
        echo "   Gamma-skewed torrents), $SCALE_NODES nodes on one port (--reuse-port), $SCALE_LOADGENS loadgen"
        echo "   processes; memory = sum of the nodes' RSS + Redis used_memory, after a 200-connection"
        echo "   warm-up; per connection = (at N - before) / N; slope = between N/2 and N"
        printf '%-4s %7s %6s %12s %12s %12s %10s %10s %10s %10s\n' mode held nodes "nodes MB" \
            "used MB" "redis RSS" "nodes B/c" "redis B/c" "total B/c" "slope B/c"
        printf '%s\n' "${SCALE_ROWS[@]}"
        printf '%s\n' "${SCALE_NOTES[@]}"
        echo "   target: < 1,024 B per connection"
    fi
    echo
    if [ ${#PROBLEMS[@]} -eq 0 ]; then
        echo "Problems: none"
    else
        echo "Problems:"
        printf ' - %s\n' "${PROBLEMS[@]}"
    fi
} >"$OUT/summary.txt"
cp "$OUT/summary.txt" bench/results/cluster-latest.txt
echo
cat "$OUT/summary.txt"

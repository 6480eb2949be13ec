#!/usr/bin/env bash
# bench/run.sh: sigtracker's benchmark suite. `make bench` (repository root) runs it after building
# bench/build/loadgen; BENCH_QUICK=1 gives a ~2-minute version of the ~10-minute full run.
#
# It starts each tracker on a free loopback port, drives it with bench/build/loadgen and prints a
# summary table, also written to bench/results/latest.txt; every run's full output is kept under
# bench/results/<timestamp>/. The parts:
#   1. sigtracker against the reference bittorrent-tracker, WebTorrent load, alternating rounds;
#   2. throughput at 1,000 connections, WT and ST mode (sigtracker);
#   3. relay latency at about half of the measured peak rate;
#   4. server memory per idle connection (15,000 idle connections);
#   5. announce cost against swarm size (one swarm of 1, 100, 10,000 peers);
#   6. connection churn;
#   7. instructions per message under valgrind --tool=callgrind.
# Environment: BENCH_QUICK=1 (short version), BENCH_CONNS (active connections, default 1000),
# BENCH_NO_CALLGRIND=1 (skip part 7).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

QUICK=${BENCH_QUICK:-0}
CONNS=${BENCH_CONNS:-1000}
if [ "$QUICK" = 1 ]; then
    ROUNDS=1 DUR=4 WARM=1 IDLE=3000 SWARMS="1 100 1000" CG_CONNS=50 CG_DUR=5 CHURN=300 QUIET_S=2
else
    ROUNDS=3 DUR=15 WARM=3 IDLE=15000 SWARMS="1 100 10000" CG_CONNS=200 CG_DUR=20 CHURN=500
    QUIET_S=10
fi
# Seconds a server under valgrind may take to start listening and to write its profile at exit.
VALGRIND_START_S=120
VALGRIND_EXIT_S=120
# Seconds a normal server may take to start and to stop.
START_S=15
STOP_S=10

SIG=build/sigtracker
LOADGEN=bench/build/loadgen
REF=bench/reference-tracker.mjs
# The flags the brief prescribes for benchmarks: the default per-connection rate limits and the
# per-address cap are meant for public service and would throttle a load test. --max-swarms is
# lifted for the same reason: the aquatic-style load announces every request to a freshly drawn
# torrent, so one connection soon joins more than the default 256 swarms, and sigtracker would
# then refuse four announces in ten (measured: 80,263 of 187,566 with 100 connections in 5 s).
SIG_FLAGS=(--log-level warn --max-per-ip 0 --msg-rate 1000000 --msg-burst 1000000
    --signal-rate 1000000 --signal-burst 1000000 --recv-rate 1000000 --recv-burst 1000000
    --min-interval 0 --max-swarms 100000)

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=bench/results/$STAMP
LOGS=$OUT/logs
mkdir -p "$LOGS"
TMP=$(mktemp -d)
SRV_PID=""
SRV_PORT=""
SRV_NAME=""
PROBLEMS=()
# shellcheck source=bench/common.sh
. bench/common.sh
OTHERS=() # other processes' CPU in each measurement window, % of one core

cleanup() {
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -KILL "$SRV_PID" 2>/dev/null
        wait "$SRV_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- servers ------------------------------------------------------------------------------------

# Waits until the server listens on SRV_PORT. Returns 1 if it died or took longer than $1 s.
wait_listening() {
    local limit=$1 i
    for ((i = 0; i < limit * 10; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$SRV_PORT") 2>/dev/null && return 0
        kill -0 "$SRV_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# start_server NAME KIND [PREFIX...]: KIND is sig or ref; PREFIX (valgrind ...) wraps the server.
# The server is started directly by this shell, so that $! is its own pid (valgrind runs the
# program inside its own process, so the pid is still the one whose CPU and memory we read).
start_server() {
    SRV_NAME=$1
    local kind=$2 limit=$START_S
    shift 2
    [ $# -gt 0 ] && limit=$VALGRIND_START_S
    SRV_PORT=$(free_port)
    if [ "$kind" = sig ]; then
        "$@" "$SIG" --host 127.0.0.1 --port "$SRV_PORT" --db "$TMP/$SRV_NAME.db" "${SIG_FLAGS[@]}" \
            >"$LOGS/$SRV_NAME.server.txt" 2>&1 &
    else
        "$@" node "$REF" --host 127.0.0.1 --port "$SRV_PORT" >"$LOGS/$SRV_NAME.server.txt" 2>&1 &
    fi
    SRV_PID=$!
    if ! wait_listening "$limit"; then
        problem "$SRV_NAME: the server did not start listening (see $LOGS/$SRV_NAME.server.txt)"
        stop_server
        return 1
    fi
}

# Stops the server with SIGTERM and records a crash, a non-zero exit or a slow exit.
stop_server() {
    [ -n "$SRV_PID" ] || return 0
    local limit=$STOP_S rc
    case "$SRV_NAME" in *callgrind*) limit=$VALGRIND_EXIT_S ;; esac
    if ! kill -0 "$SRV_PID" 2>/dev/null; then
        wait "$SRV_PID"
        rc=$?
        problem "$SRV_NAME: the server had exited (status $rc) before it was stopped"
        SRV_PID=""
        return 0
    fi
    kill -TERM "$SRV_PID"
    await_exit "$SRV_PID" "$limit" "$SRV_NAME: the server" "$LOGS/$SRV_NAME.server.txt"
    SRV_PID=""
}

# ---- the load generator -------------------------------------------------------------------------

R=""
# run_lg NAME [loadgen options]: runs the load generator against the current server and leaves its
# RESULT line in R ("" when it produced none).
run_lg() {
    local name=$1
    shift
    local out="$LOGS/$name.txt"
    wait_quiet
    echo "+ $LOADGEN --port $SRV_PORT --server-pid $SRV_PID $*" >"$out"
    "$LOADGEN" --port "$SRV_PORT" --server-pid "$SRV_PID" "$@" >>"$out" 2>&1
    R=$(grep '^RESULT ' "$out" | tail -n 1)
    if [ -z "$R" ]; then
        problem "$name: the load generator printed no RESULT (see $out)"
        return 1
    fi
    if ! kill -0 "$SRV_PID" 2>/dev/null; then
        problem "$name: the server died during the run (see $LOGS/$SRV_NAME.server.txt)"
    fi
    check_result "$name" "$out"
    log "$(printf '  %-28s %9s msg/s %9s msg/cpu-s ann p50/p99 %s/%s us, others %s cpu-s' \
        "$name" "$(get msgs_per_s)" "$(get msgs_per_cpu_s)" "$(get ann_p50_us)" \
        "$(get ann_p99_us)" "$(get others_cpu_s)")"
}

ms() { calc "$1" 1000 1; }

# ---- the suite ----------------------------------------------------------------------------------

make -s all >/dev/null || { echo "run.sh: building sigtracker failed" >&2; exit 1; }
make -s -C bench >/dev/null || { echo "run.sh: building the load generator failed" >&2; exit 1; }
[ -d node_modules/bittorrent-tracker ] || { echo "run.sh: run scripts/install-deps.sh" >&2; exit 1; }
START=$(date +%s)
REF_VERSION=$(node -p "require('./node_modules/bittorrent-tracker/package.json').version")
log "bench: results in $OUT (quick=$QUICK rounds=$ROUNDS duration=${DUR}s warmup=${WARM}s)"
log "bench: load average before starting: $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. Side by side, alternating rounds, the same WebTorrent load.
log "[1] sigtracker vs bittorrent-tracker $REF_VERSION: WT mode, $CONNS connections, $ROUNDS rounds"
REF_CONNS=$CONNS
declare -A M
for k in sig ref; do for f in mpc rpc mps cpu rss hwm rpconn ap50 ap99 op50 op99 err oth sent; do
    M[$k.$f]=""
done; done
add() { M[$1.$2]="${M[$1.$2]} $3"; }
for ((round = 1; round <= ROUNDS; round++)); do
    for k in sig ref; do
        n=$CONNS
        [ $k = ref ] && n=$REF_CONNS
        stats=()
        [ $k = sig ] && stats=(--server-stats)
        start_server "cmp-$k-$round" $k || continue
        run_lg "cmp-$k-r$round" --mode wt --connections "$n" --duration "$DUR" --warmup "$WARM" \
            "${stats[@]}"
        stop_server
        if [ $k = ref ] && [ "$(get held)" != NA ] && [ "$(get held)" -lt "$n" ] && [ $round = 1 ]; then
            REF_CONNS=$((n / 2))
            problem "bittorrent-tracker held only $(get held) of $n connections; it is measured" \
                "with $REF_CONNS from round 2 on"
        fi
        [ -n "$R" ] || continue
        add $k mpc "$(get msgs_per_cpu_s)"
        add $k rpc "$(get recv_per_cpu_s)"
        add $k mps "$(get msgs_per_s)"
        add $k sent "$(get sent_per_s)"
        add $k cpu "$(calc "$(get server_cpu_s)" "$(get window_s)" 2)"
        add $k rss "$(get rss_kb)"
        add $k hwm "$(get hwm_kb)"
        add $k rpconn "$(get rss_per_conn_b)"
        add $k ap50 "$(get ann_p50_us)"
        add $k ap99 "$(get ann_p99_us)"
        add $k op50 "$(get offer_p50_us)"
        add $k op99 "$(get offer_p99_us)"
        add $k err "$(($(get errors) + $(get closes)))"
        add $k oth "$(get others_cpu_s)"
    done
done
declare -A MED
for k in sig ref; do for f in mpc rpc mps cpu rss hwm rpconn ap50 ap99 op50 op99 err oth sent; do
    # shellcheck disable=SC2086
    MED[$k.$f]=$(median ${M[$k.$f]})
done; done

# 2. Throughput at 1,000 connections: WT comes from part 1; ST is measured here.
log "[2] sigtracker throughput, ST mode, $CONNS connections"
declare -A ST
if start_server st-throughput sig; then
    run_lg st-throughput --mode st --connections "$CONNS" --duration "$DUR" --warmup "$WARM" \
        --server-stats
    stop_server
    for f in msgs_per_s sent_per_s msgs_per_cpu_s recv_per_cpu_s server_cpu_s window_s ann_p50_us \
        ann_p99_us offer_p50_us offer_p99_us; do ST[$f]=$(get $f); done
fi

# 3. Latency at about half of the peak rate, per tracker and mode. The cap is on messages the
# clients send; the peak is the median sent rate measured above.
log "[3] latency at half of the peak send rate"
LAT_ROWS=()
# Latency suffers most from other processes' work: a run in which they used more than
# LAT_NOISY_PCT % of a core is repeated once, and the quieter of the two is kept.
LAT_NOISY_PCT=30
lat_run() { # NAME KIND MODE PEAK_SENT CONNS
    local name=$1 kind=$2 mode=$3 peak=$4 n=$5 rate try best="" best_noise=1000000 noise
    [ "$peak" = NA ] && return
    rate=$(awk "BEGIN { printf \"%d\", $peak / 2 }")
    for try in 1 2; do
        start_server "$name-$try" "$kind" || return
        run_lg "$name-$try" --mode "$mode" --connections "$n" --rate "$rate" --duration "$DUR" \
            --warmup "$WARM"
        stop_server
        [ -n "$R" ] || continue
        noise=$(calc "$(get others_cpu_s)*100" "$(get window_s)" 0)
        if [ "$noise" != NA ] && [ "$noise" -lt "$best_noise" ]; then
            best=$R
            best_noise=$noise
        fi
        [ "$noise" != NA ] && [ "$noise" -le "$LAT_NOISY_PCT" ] && break
    done
    R=$best
    [ -n "$R" ] || return
    LAT_ROWS+=("$(printf '%-26s %9s %9s %8s %8s %17s %17s %17s' "$name" "$rate" "$(get sent_per_s)" \
        "$(calc "$(get server_cpu_s)*100" "$(get window_s)" 0)%" "$best_noise%" \
        "$(ms "$(get ann_p50_us)")/$(ms "$(get ann_p99_us)")" \
        "$(ms "$(get offer_p50_us)")/$(ms "$(get offer_p99_us)")" \
        "$(ms "$(get answer_p50_us)")/$(ms "$(get answer_p99_us)")")")
}
lat_run lat-sigtracker-wt sig wt "${MED[sig.sent]}" "$CONNS"
lat_run lat-sigtracker-st sig st "${ST[sent_per_s]:-NA}" "$CONNS"
lat_run lat-reference-wt ref wt "${MED[ref.sent]}" "$REF_CONNS"
# sigtracker at the reference's rate: the two servers' latency under the same load.
lat_run lat-sigtracker-wt-refrate sig wt "${MED[ref.sent]}" "$CONNS"

# 4. Memory per idle connection: (RSS after - RSS before) / connections held.
log "[4] memory: $IDLE idle connections"
MEM_ROWS=()
mem_run() { # NAME KIND MODE
    start_server "$1" "$2" || return
    # Warm-up: 200 idle connections opened and closed first, so the code and library pages an
    # idle connection touches (OpenSSL's SHA-1, SQLite; for node, its JIT) are already resident
    # when RSS is read before the measured run: the figure is then the marginal cost of a
    # connection, not the one-time cost of faulting in code (about 2 MB of file-backed pages for
    # sigtracker, 130 bytes per connection at 15,000).
    run_lg "$1-warmup" --mode "$3" --connections 0 --idle 200 --duration 1 --warmup 1
    run_lg "$1" --mode "$3" --connections 0 --idle "$IDLE" --duration 2 --warmup 1
    stop_server
    [ -n "$R" ] || return
    MEM_ROWS+=("$(printf '%-30s %8s %10s %10s %10s %12s' "$1" "$(get held)" "$(get rss_start_kb)" \
        "$(get rss_kb)" "$(get hwm_kb)" "$(get rss_delta_per_conn_b)")")
}
mem_run mem-sigtracker-st-idle sig st
mem_run mem-sigtracker-wt-idle sig wt
mem_run mem-reference-wt-idle ref wt

# 5. One swarm of N peers: N - A idle members plus A active connections announcing into it.
log "[5] swarm size scaling (one swarm): $SWARMS peers"
SWARM_ROWS=()
for mode in st wt; do
    for size in $SWARMS; do
        active=$((size < 50 ? size : 50))
        name=swarm-$mode-$size
        start_server "$name" sig || continue
        # WT keeps aquatic's one request in flight: with more, a connection of a 100-peer swarm
        # is sent offers faster than its answers get back, and sigtracker forgets the oldest of
        # the 64 offers it remembers per connection (its answers then fail "no such offer").
        # A swarm of one has nobody to relay to, so its lone connection keeps 4 in flight, as
        # in ST mode: one request at a time would measure a ping-pong, not the server.
        if [ $mode = st ]; then
            extra=(--offers 0 --numwant 50 --window 4)
        else
            extra=(--offers 10 --window $((size > 1 ? 1 : 4)))
        fi
        run_lg "$name" --mode $mode --torrents 1 --connections "$active" --idle $((size - active)) \
            "${extra[@]}" --duration "$DUR" --warmup "$WARM" --server-stats
        stop_server
        [ -n "$R" ] || continue
        ann=$(calc "$(get announces)" "$(get window_s)" 0)
        us_per=$(calc "$(get server_cpu_s)*1000000" "$(get announces)" 1)
        SWARM_ROWS+=("$(printf '%-4s %7s %7s %11s %14s %14s %15s' $mode "$size" "$active" "$ann" \
            "$us_per" "$(get msgs_per_cpu_s)" \
            "$(ms "$(get ann_p50_us)")/$(ms "$(get ann_p99_us)")")")
    done
done

# 6. Churn: connections that connect, identify, announce and leave.
log "[6] churn: $CHURN connections per second (ST mode)"
CHURN_ROW=""
if start_server churn sig; then
    run_lg churn --mode st --connections 0 --churn "$CHURN" --duration "$DUR" --warmup 1
    stop_server
    if [ -n "$R" ]; then
        CHURN_ROW=$(printf '%-10s %10s %12s %18s %14s' "$CHURN/s" \
            "$(calc "$(get churn_done)" "$(get window_s)" 1)" \
            "$(calc "$(get server_cpu_s)*1000000" "$(get churn_done)" 1)" \
            "$(ms "$(get churn_p50_us)")/$(ms "$(get churn_p99_us)")" "$(get errors)")
    fi
fi

# 7. Instructions per message: the whole server process (start-up included) under callgrind.
CG_ROWS=()
declare -A CG_IR=([sig]=NA [ref]=NA)
cg_run() { # NAME KIND
    local name=$1 kind=$2 cgout="$OUT/$1.callgrind.out" ir
    start_server "$name" "$kind" valgrind --tool=callgrind --callgrind-out-file="$cgout" || return
    # A dump once the server listens splits the profile: $cgout.1 holds the start-up, $cgout
    # (written at exit) everything under load, so both "total" and "under load" can be shown.
    callgrind_control -d "$SRV_PID" >/dev/null 2>&1 || problem "$name: callgrind_control -d failed"
    run_lg "$name" --mode wt --connections "$CG_CONNS" --duration "$CG_DUR" --warmup 0 \
        --ramp-timeout 120 --req-timeout 60
    stop_server
    [ -n "$R" ] || return
    local load start
    load=$(sed -n 's/^totals: *//p' "$cgout" 2>/dev/null | head -n 1)
    start=$(sed -n 's/^totals: *//p' "$cgout.1" 2>/dev/null | head -n 1)
    [ -n "$load" ] || { problem "$name: no callgrind totals in $cgout"; return; }
    ir=$((load + ${start:-0}))
    CG_IR[$kind]=$(calc "$ir" "$(get recv)" 0)
    CG_ROWS+=("$(printf '%-22s %6s %5ss %14s %14s %10s %12s %12s' "$name" "$CG_CONNS" "$CG_DUR" \
        "$ir" "${start:-NA}" "$(get recv)" "$(calc "$ir" "$(get recv)" 0)" \
        "$(calc "$load" "$(get recv)" 0)")")
}
if [ "${BENCH_NO_CALLGRIND:-0}" != 1 ] && command -v valgrind >/dev/null; then
    log "[7] callgrind: $CG_CONNS connections for ${CG_DUR}s, WT mode"
    cg_run callgrind-sigtracker sig
    cg_run callgrind-reference ref
fi

# ---- the summary --------------------------------------------------------------------------------

ELAPSED=$(($(date +%s) - START))
ratio() { calc "$1" "$2" 2; }
{
    echo "sigtracker benchmark summary, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs," \
        "$(uname -r), node $(node --version), bittorrent-tracker $REF_VERSION"
    echo "quick=$QUICK, $ROUNDS round(s) of ${DUR}s after ${WARM}s warm-up; suite took ${ELAPSED}s;" \
        "logs in $OUT"
    echo "sigtracker flags: ${SIG_FLAGS[*]}"
    echo "reference: node $REF (bittorrent-tracker Server, ws only, stats off)"
    # shellcheck disable=SC2068
    echo "noise: other processes used $(median ${OTHERS[@]})% of one core in the median" \
        "measurement window (max $(printf '%s\n' ${OTHERS[@]} | grep -v NA | sort -g | tail -n 1)%);" \
        "throughput and latency suffer from it, CPU-normalised figures much less"
    echo
    echo "1. WebTorrent load, aquatic-style (10 offers per announce, 10,000 Gamma-skewed torrents," \
        "one request in flight per connection), medians of $ROUNDS alternating round(s)"
    printf '%-44s %14s %20s %8s\n' "metric (ratio = sigtracker / reference)" sigtracker \
        bittorrent-tracker ratio
    row() { printf '%-44s %14s %20s %8s\n' "$1" "$2" "$3" "$(ratio "$2" "$3")"; }
    row "connections" "$CONNS" "$REF_CONNS"
    row "messages per server CPU-second (sent+recv)" "${MED[sig.mpc]}" "${MED[ref.mpc]}"
    row "messages received per server CPU-second" "${MED[sig.rpc]}" "${MED[ref.rpc]}"
    row "messages per second (sent+recv)" "${MED[sig.mps]}" "${MED[ref.mps]}"
    row "server CPU (cores)" "${MED[sig.cpu]}" "${MED[ref.cpu]}"
    row "server RSS at the end (kB)" "${MED[sig.rss]}" "${MED[ref.rss]}"
    row "server peak RSS (kB)" "${MED[sig.hwm]}" "${MED[ref.hwm]}"
    row "server RSS per connection (bytes)" "${MED[sig.rpconn]}" "${MED[ref.rpconn]}"
    row "announce->response p50 (ms)" "$(ms "${MED[sig.ap50]}")" "$(ms "${MED[ref.ap50]}")"
    row "announce->response p99 (ms)" "$(ms "${MED[sig.ap99]}")" "$(ms "${MED[ref.ap99]}")"
    row "offer relay p50 (ms)" "$(ms "${MED[sig.op50]}")" "$(ms "${MED[ref.op50]}")"
    row "offer relay p99 (ms)" "$(ms "${MED[sig.op99]}")" "$(ms "${MED[ref.op99]}")"
    row "errors + closes per run" "${MED[sig.err]}" "${MED[ref.err]}"
    row "other processes' CPU-s in the window" "${MED[sig.oth]}" "${MED[ref.oth]}"
    echo "   (latencies at saturation are queueing delays: every connection keeps a request in flight)"
    echo
    echo "2. Throughput at $CONNS connections (sigtracker)"
    printf '%-6s %14s %16s %16s %12s\n' mode "msgs/s" "msgs/server-CPU-s" "recv/server-CPU-s" "server CPU"
    printf '%-6s %14s %16s %16s %12s\n' wt "${MED[sig.mps]}" "${MED[sig.mpc]}" "${MED[sig.rpc]}" \
        "${MED[sig.cpu]}"
    printf '%-6s %14s %16s %16s %12s\n' st "${ST[msgs_per_s]:-NA}" "${ST[msgs_per_cpu_s]:-NA}" \
        "${ST[recv_per_cpu_s]:-NA}" "$(calc "${ST[server_cpu_s]:-NA}" "${ST[window_s]:-NA}" 2)"
    echo
    echo "3. Latency at about half of the peak send rate (--rate = median sent/s above / 2); ms;"
    echo "   \"others\" is other processes' CPU in the window (% of one core): it inflates latency;"
    echo "   the last row is sigtracker at the reference's half-peak rate (the same load for both)"
    printf '%-26s %9s %9s %8s %8s %17s %17s %17s\n' run "rate cap" "sent/s" "srv CPU" others \
        "announce p50/p99" "offer p50/p99" "answer-back p50/99"
    printf '%s\n' "${LAT_ROWS[@]}"
    echo
    echo "4. Memory per idle connection: (RSS after - RSS before) / connections held, after a"
    echo "   warm-up of 200 connections opened and closed (so code pages are already resident)"
    printf '%-30s %8s %10s %10s %10s %12s\n' run held "RSS0 kB" "RSS kB" "peak kB" "bytes/conn"
    printf '%s\n' "${MEM_ROWS[@]}"
    echo
    echo "5. Swarm size scaling: one swarm; ST announces ask num_want 50 (no relays; 4 in flight per"
    echo "   connection), WT announces carry 10 offers (1 in flight, 4 for the lone peer of a swarm"
    echo "   of 1); the other members are idle connections, which read what they are sent and never"
    echo "   answer. CPU per announce includes the relays it causes (offers, and answers coming back)."
    printf '%-4s %7s %7s %11s %14s %14s %15s\n' mode peers active announces/s "us CPU/announce" \
        "msgs/CPU-s" "ann p50/p99 ms"
    printf '%s\n' "${SWARM_ROWS[@]}"
    echo "   100,000 peers do not fit here: the fd limit is 20,000 per process, so one server holds"
    echo "   at most ~19,968 connections (and one swarm at most that many peers). The swarm table"
    echo "   alone (bench/build/swarm_micro: find, refresh and sample 50 peers) measures what does not fit:"
    bench/build/swarm_micro | sed 's/^/   /'
    echo
    echo "6. Churn (ST: connect, upgrade, ola, announce, close)"
    printf '%-10s %10s %12s %18s %14s\n' asked "done/s" "us CPU/cycle" "cycle p50/p99 ms" errors
    [ -n "$CHURN_ROW" ] && echo "$CHURN_ROW"
    if [ ${#CG_ROWS[@]} -gt 0 ]; then
        echo
        echo "7. Instructions per message (valgrind --tool=callgrind on the whole server process,"
        echo "   start-up included; messages = those the clients received; \"load Ir/msg\" leaves out"
        echo "   the start-up, i.e. everything after the server began listening)"
        printf '%-22s %6s %6s %14s %14s %10s %12s %12s\n' run conns time "total Ir" "start-up Ir" \
            messages "Ir/message" "load Ir/msg"
        printf '%s\n' "${CG_ROWS[@]}"
        echo "   bittorrent-tracker / sigtracker, instructions per message:" \
            "$(calc "${CG_IR[ref]}" "${CG_IR[sig]}" 1)"
    fi
    echo
    if [ ${#PROBLEMS[@]} -eq 0 ]; then
        echo "Problems: none (no error messages, closes, failed opens, timeouts or crashes)"
    else
        echo "Problems:"
        printf ' - %s\n' "${PROBLEMS[@]}"
    fi
} >"$OUT/summary.txt"
cp "$OUT/summary.txt" bench/results/latest.txt
echo
cat "$OUT/summary.txt"

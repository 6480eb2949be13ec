# bench/common.sh: the shell helpers bench/run.sh, bench/cluster.sh and bench/tls.sh share. Sourced, not run;
# the caller sets OUT (its results folder), PROBLEMS=() and QUIET_S before using them.

log() { printf '%s\n' "$*" | tee -a "$OUT/progress.txt" >&2; }
problem() {
    PROBLEMS+=("$*")
    log "PROBLEM: $*"
}

# await_exit PID LIMIT_S WHO LOG: waits up to LIMIT_S seconds for PID (already sent SIGTERM) to
# exit, kills it after that, and records a slow exit, a non-zero status or a crash in LOG as
# problems of WHO ("the server", a node's name).
await_exit() {
    local pid=$1 limit=$2 who=$3 logf=$4 i rc
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        problem "$who ignored SIGTERM for $limit s; killed"
        kill -KILL "$pid"
    fi
    wait "$pid"
    rc=$?
    [ "$rc" -eq 0 ] || problem "$who exited with status $rc after SIGTERM"
    if grep -qiE 'sanitizer|segmentation|assert|abort|panic' "$logf"; then
        problem "$who: the log reports a crash (see $logf)"
    fi
}

# Prints a loopback port nobody listens on, below the ephemeral range (32768 and up) that the
# load generator's own connections use.
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    echo "$(basename "$0"): no free port" >&2
    exit 1
}

# Busy CPU ticks of the whole machine so far (user, nice, system, irq, softirq, steal).
busy_ticks() {
    local _cpu user nice system _idle _iowait irq softirq steal _rest
    read -r _cpu user nice system _idle _iowait irq softirq steal _rest </proc/stat
    echo $((user + nice + system + irq + softirq + steal))
}
HZ=$(getconf CLK_TCK)
# Other people's work on this machine (builds, fuzzers, tests) skews throughput and latency.
# Before each measurement, wait up to QUIET_S seconds for a second in which the machine is
# busy for less than QUIET_PCT % of one core; then measure anyway (the noise is reported).
QUIET_PCT=30
wait_quiet() {
    local t b0 b1 pct=0
    for ((t = 0; t < QUIET_S; t++)); do
        b0=$(busy_ticks)
        sleep 1
        b1=$(busy_ticks)
        pct=$(((b1 - b0) * 100 / HZ))
        [ "$pct" -lt "$QUIET_PCT" ] && return 0
    done
    log "  (the machine stayed busy: $pct% of one core used by others after waiting ${QUIET_S}s)"
}

# get KEY: the value of KEY in the RESULT line R, or NA.
get() {
    local v
    v=$(sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $R")
    echo "${v:-NA}"
}

# median N...: the median of the numbers given (NA and empty values ignored), or NA.
median() {
    printf '%s\n' "$@" | grep -v '^NA$' | grep -v '^$' | sort -g |
        awk '{a[NR]=$1} END {if (NR==0) print "NA"; else if (NR%2) print a[(NR+1)/2];
             else print (a[NR/2]+a[NR/2+1])/2}'
}

# calc EXPR DIVISOR [DECIMALS]: awk arithmetic, "NA" if an operand is NA or the divisor is 0.
calc() {
    case "$1 $2" in *NA*) echo NA; return ;; esac
    awk "BEGIN { d = $2; if (d == 0) print \"NA\"; else printf \"%.${3:-2}f\", ($1) / d }"
}

# check_result NAME OUTFILE [WHO]: after a load-generator run whose RESULT line is in R, records
# the other processes' CPU share (OTHERS) and reports as problems what should never happen in a
# benchmark: messages WHO (default "the server") dropped for slow readers, error messages,
# closes by the server, failed opens and timed-out requests.
check_result() {
    local name=$1 out=$2 who=${3:-the server} errs closes cf tmo drops
    OTHERS+=("$(calc "$(get others_cpu_s)*100" "$(get window_s)" 0)")
    drops=$(get srv_dropped)
    if [ "$drops" != NA ] && [ "$drops" != 0 ]; then
        problem "$name: $who dropped $drops messages for slow readers (srv_dropped)"
    fi
    errs=$(get errors)
    closes=$(get closes)
    cf=$(($(get connect_failures) + $(get upgrade_failures)))
    tmo=$(get timeouts)
    if [ "$errs" != 0 ] || [ "$closes" != 0 ] || [ "$cf" != 0 ] || [ "$tmo" != 0 ]; then
        problem "$name: $errs error messages, $closes closes by the server, $cf failed opens," \
            "$tmo timed-out requests: $(grep -E '^ +[0-9]+ x ' "$out" | head -n 3 |
                sed 's/^ *//' | tr '\n' ';')"
    fi
}

#!/usr/bin/env bash
# Runs libFuzzer targets for a fixed time each and prints one line per target.
#
# Usage: scripts/run-fuzz.sh SECONDS BIN...
#
# Each BIN is a libFuzzer binary such as build/fuzz/fuzz_http; its seed corpus is
# fuzz/corpus/<basename of BIN>. The fuzzer runs on a temporary copy of that corpus, so that the
# inputs it generates never pollute the committed seeds (an absent corpus starts empty), and
# writes crash reproducers to a temporary artifact directory. All targets run even when one
# fails; the exit status is non-zero when any target crashed, and for each such target the
# reproducer path and the tail of its log are printed. Failed targets' directories are kept.
set -euo pipefail

# Lines of a failed target's log that are printed.
LOG_TAIL_LINES=40

usage() {
    echo "usage: $0 SECONDS BIN..." >&2
    exit 2
}

[ "$#" -ge 2 ] || usage
seconds=$1
shift
case "$seconds" in
'' | *[!0-9]*) usage ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/sigtracker-fuzz.XXXXXX")
keep_work=0
cleanup() {
    if [ "$keep_work" -eq 0 ]; then
        rm -rf "$work"
    fi
}
trap cleanup EXIT

failed=0
for bin in "$@"; do
    name=$(basename "$bin")
    dir="$work/$name"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    if [ ! -x "$bin" ]; then
        echo "$name: FAILED (no executable at $bin)"
        failed=$((failed + 1))
        continue
    fi
    if [ -d "$root/fuzz/corpus/$name" ]; then
        cp -R "$root/fuzz/corpus/$name/." "$dir/corpus/"
    fi
    seeds=$(find "$dir/corpus" -type f | wc -l)

    # libFuzzer's exit status tells a clean run (0) from a crash, a leak, a timeout or an
    # out-of-memory (all non-zero, each leaving a reproducer in the artifact directory).
    status=0
    "$bin" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1 || status=$?

    execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$dir/log" | tail -n 1)
    execs=${execs:-?}
    units=$(find "$dir/corpus" -type f | wc -l)
    if [ "$status" -eq 0 ]; then
        echo "$name: ok, $execs executions in ${seconds}s, corpus $seeds -> $units inputs"
    else
        failed=$((failed + 1))
        keep_work=1
        reproducer=$(find "$dir/artifacts" -type f | head -n 1)
        echo "$name: FAILED (exit $status) after $execs executions"
        echo "  reproducer: ${reproducer:-none written}"
        echo "  replay with: $bin ${reproducer:-<input>}"
        echo "  log: $dir/log, last $LOG_TAIL_LINES lines:"
        tail -n "$LOG_TAIL_LINES" "$dir/log" | sed 's/^/    /'
    fi
done

if [ "$failed" -gt 0 ]; then
    echo "fuzz: $failed of $# targets failed"
    exit 1
fi
echo "fuzz: all $# targets clean"

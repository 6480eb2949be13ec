#!/usr/bin/env bash
# Fails when the man pages miss something the binary has: every flag `--help` lists must be an
# entry of sigtracker(8), every key of `--print-config` an entry of sigtracker.conf(5) and every
# section of the file a heading there; and man(1) must read both pages without a warning.
#
#   scripts/check-man.sh BINARY sigtracker.8 sigtracker.conf.5
set -euo pipefail
bin=$1
page8=$2
page5=$3
fail=0

# scdoc writes an entry's term in bold: \fB--flag\fR in sigtracker(8), \fBkey\fR = in (5).
flags=$("$bin" --help | sed -n 's/^  \(--[a-z0-9][a-z0-9-]*\).*/\1/p')
[ -n "$flags" ] || { echo "check-man: no flags in $bin --help" >&2; exit 1; }
nflags=0
for f in $flags; do
    nflags=$((nflags + 1))
    if ! grep -qF "\\fB$f\\fR" "$page8"; then
        echo "check-man: $f is in --help but not in $page8" >&2
        fail=1
    fi
done

config=$("$bin" --print-config)
keys=$(printf '%s\n' "$config" | sed -n 's/^#\{0,1\} *\([a-z][a-z0-9-]*\) =.*/\1/p' | sort -u)
nkeys=0
for k in $keys; do
    nkeys=$((nkeys + 1))
    if ! grep -qF "\\fB$k\\fR =" "$page5"; then
        echo "check-man: key $k is in --print-config but not in $page5" >&2
        fail=1
    fi
done
for s in $(printf '%s\n' "$config" | sed -n 's/^\[\([a-z]*\)\]$/\1/p'); do
    if ! grep -qF "[$s]" "$page5"; then
        echo "check-man: section [$s] is in --print-config but not in $page5" >&2
        fail=1
    fi
done

# man --warnings prints groff's complaints (bad requests, lines it cannot break) on stderr.
for p in "$page8" "$page5"; do
    warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$p" 2>&1 >/dev/null || true)
    if [ -n "$warnings" ]; then
        echo "check-man: man reports for $p:" >&2
        printf '%s\n' "$warnings" >&2
        fail=1
    fi
done

[ "$fail" -eq 0 ] && echo "check-man: $nflags flags in $(basename "$page8"), $nkeys keys in $(basename "$page5"), no man warnings"
exit "$fail"

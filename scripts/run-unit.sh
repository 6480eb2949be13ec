#!/usr/bin/env bash
# Runs every unit-test binary given as an argument and prints one closing line. Each binary is a
# cmocka runner; a failing binary makes the whole tier fail, but all binaries still run.
set -u
failed=0
total=0
for bin in "$@"; do
    total=$((total + 1))
    if ! "$bin"; then
        echo "FAILED: $bin" >&2
        failed=$((failed + 1))
    fi
done
echo "unit tests: $((total - failed)) of $total binaries passed"
[ "$failed" -eq 0 ]

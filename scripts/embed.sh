#!/bin/sh
# Writes the bytes of a file as a C initializer list ("0x3c,0x21,..."), for #include inside an
# array definition: how the dashboard page (src/server/dashboard.html) gets into the binary.
#   scripts/embed.sh INPUT OUTPUT
set -eu
tmp="$2.tmp"
od -An -v -tx1 "$1" | sed -e 's/ \([0-9a-f][0-9a-f]\)/0x\1,/g' >"$tmp"
mv "$tmp" "$2"

#!/usr/bin/env bash
# Regenerates the annotated example configuration from the binary's --print-config: the file
# etc/sigtracker.conf.example and the copy between the BEGIN/END markers in
# docs/configuration.md. tests/integration/config.test.mjs fails when either differs from what
# the binary prints, so run this after adding or changing a flag.
#
# Usage: scripts/update-config-example.sh [BIN]   (default: build/sigtracker)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/sigtracker}
example=$root/etc/sigtracker.conf.example
doc=$root/docs/configuration.md

"$bin" --print-config >"$example.tmp"
mv "$example.tmp" "$example"

# Replace the lines between the markers with the example in an ```ini fence.
awk -v example="$example" '
    /^<!-- BEGIN sigtracker\.conf\.example -->$/ {
        print
        print "```ini"
        while ((getline line < example) > 0)
            print line
        print "```"
        skipping = 1
        next
    }
    /^<!-- END sigtracker\.conf\.example -->$/ { skipping = 0 }
    !skipping { print }
' "$doc" >"$doc.tmp"
mv "$doc.tmp" "$doc"
echo "updated $example and $doc"

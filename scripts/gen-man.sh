#!/usr/bin/env bash
# Writes a man page's scdoc source from its template (man/*.scd.in) and the binary's own --help,
# so the pages list every flag and key the binary has and cannot drift from the option table in
# src/config/config.c. In the template, a line that is exactly
#
#   @OPTIONS@   becomes every flag, grouped as --help groups them (sigtracker(8));
#   @KEYS@      becomes every key of the file, by section (sigtracker.conf(5));
#
# and @VERSION@ anywhere becomes the version `--version` prints.
#
#   scripts/gen-man.sh BINARY TEMPLATE > OUTPUT.scd
set -euo pipefail
bin=$1
template=$2

help=$("$bin" --help)
version=$("$bin" --version | awk '{print $NF}')

# Reads --help on stdin and writes scdoc. mode=options: "## GROUP" subsections of flags (the
# lone --help and --version, which --help lists last, get their own "general" group);
# mode=keys: "## [section]" subsections of file keys, skipping the command-line-only ones.
render() {
    awk -v mode="$1" '
    function esc(s) {
        # scdoc markup: backslash, * (bold) and _ (underline) are taken literally when escaped.
        gsub(/\\/, "\\\\", s); gsub(/\*/, "\\*", s); gsub(/_/, "\\_", s)
        return s
    }
    function heading(g) {
        if (g == shown) return
        shown = g
        if (mode == "options") printf "## %s\n\n", toupper(g)
        else printf "## [%s]\n\n", g
    }
    /^[a-z][a-z ]*:$/ { group = substr($0, 1, length($0) - 1); next }
    /^  --[a-z0-9]/ {
        flag = $1; arg = ""
        if ($2 ~ /^<.*>$/) arg = substr($2, 2, length($2) - 2)
        text = $0
        sub(/^  --[^ ]+( <[^>]*>)? +/, "", text)
        restart = sub(/ \[restart\]$/, "", text)
        g = group
        if (flag == "--help" || flag == "--version") g = "general"
        if (mode == "keys" && (g == "configuration" || g == "general")) next
        heading(g)
        name = substr(flag, 3)
        if (mode == "options") {
            line = "*" esc(flag) "*"
            if (arg != "") line = line " _" esc(arg) "_"
        } else {
            line = "*" esc(name) "* ="
            line = line " " (arg != "" ? "_" esc(arg) "_" : "true | false")
        }
        printf "%s\n", line
        printf "\t%s", esc(text)
        if (text !~ /\.$/) printf "."
        if (restart) printf " A reload (SIGHUP) keeps the running value: restart to change it."
        if (mode == "options" && arg == "" && g != "configuration" && g != "general")
            printf " *--no-%s* turns it off.", esc(name)
        printf "\n\n"
    }' 
}

while IFS= read -r line || [ -n "$line" ]; do
    case $line in
    @OPTIONS@) printf '%s\n' "$help" | render options ;;
    @KEYS@) printf '%s\n' "$help" | render keys ;;
    *) printf '%s\n' "${line//@VERSION@/$version}" ;;
    esac
done <"$template"

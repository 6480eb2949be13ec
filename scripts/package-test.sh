#!/usr/bin/env bash
# The packaging test (make package-test, part of make test). On this machine, as root or
# through sudo:
#   1. builds the Debian package (scripts/build-deb.sh) and fails on any lintian error;
#   2. `make install` into a temporary prefix and `systemd-analyze verify` of that unit;
#   3. installs the package with apt-get, checks its files, verifies the installed unit;
#   4. starts the INSTALLED binary the way the unit does (its ExecStart, as an unprivileged
#      user, with a temporary database and a free port on 127.0.0.1 given as flags, which
#      override the packaged file), checks /health, reloads with SIGHUP, stops with SIGTERM,
#      and checks the Type=notify messages (scripts/notify-check.py);
#   5. purges the package and checks that nothing it installed is left.
# It is safe to run repeatedly: a lock serialises runs, a sigtracker package left installed by
# an interrupted run is purged first, and the exit trap stops the server and purges.
#
#   scripts/package-test.sh [BUILD]      (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
deb_dir=$(realpath -m "$build/deb")
ours="sigtracker maintainers <sigtracker@example.org>"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# apt-get waits for a dpkg lock held by another installer instead of failing at once.
APT=($SUDO apt-get -y -q -o DPkg::Lock::Timeout=300)

exec 9>/tmp/sigtracker-package-test.lock
flock 9

tmp=$(mktemp -d /tmp/sigtracker-package-test.XXXXXX)
chmod 0755 "$tmp"
server_pid=""
installed_by_us=0
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "$installed_by_us" -eq 1 ] && dpkg-query -W sigtracker >/dev/null 2>&1; then
        "${APT[@]}" purge sigtracker >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
    echo "package-test: FAILED: $*" >&2
    exit 1
}

is_installed() {
    dpkg-query -W -f='${db:Status-Status}' sigtracker 2>/dev/null | grep -qv '^not-installed$'
}
purge() {
    "${APT[@]}" purge sigtracker >/dev/null
}

# 1. The package, and lintian.
scripts/build-deb.sh "$deb_dir" >"$tmp/build.log" 2>&1 || {
    tail -40 "$tmp/build.log" >&2
    fail "the package did not build (log above)"
}
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb="$deb_dir/sigtracker_${version}_$arch.deb"
echo "package-test: built $deb"
lintian --fail-on error "$deb" >"$tmp/lintian.txt" 2>&1 || {
    cat "$tmp/lintian.txt" >&2
    fail "lintian reports errors"
}
echo "package-test: lintian: $(grep -c '^[EWIP]:' "$tmp/lintian.txt" || true) tags, no errors"
sed -n 's/^/  /;/^  [EWIP]:/p' "$tmp/lintian.txt"

# 2. make install into a prefix, and the unit it writes.
make -s install PREFIX="$tmp/prefix" BUILD="$build" >/dev/null
[ -x "$tmp/prefix/sbin/sigtracker" ] || fail "make install wrote no $tmp/prefix/sbin/sigtracker"
MANPATH="$tmp/prefix/share/man" systemd-analyze verify "$tmp/prefix/lib/systemd/system/sigtracker.service" ||
    fail "systemd-analyze verify of the unit make install wrote"
make -s uninstall PREFIX="$tmp/prefix" BUILD="$build" >/dev/null
left=$(find "$tmp/prefix" -type f)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "package-test: make install, systemd-analyze verify, make uninstall: ok"

# 3. Install the package (after purging one an interrupted run left).
if is_installed; then
    maint=$(dpkg-query -W -f='${Maintainer}' sigtracker)
    [ "$maint" = "$ours" ] || fail "a sigtracker package by \"$maint\" is installed; not touching it"
    echo "package-test: purging the sigtracker package a previous run left"
    purge
fi
installed_by_us=1
"${APT[@]}" install --no-install-recommends "$deb" >"$tmp/apt.log" 2>&1 || {
    cat "$tmp/apt.log" >&2
    fail "apt-get install $deb"
}
if [ -d /run/systemd/system ]; then
    # systemd runs here: the package started the service; stop it so the port stays free.
    $SUDO systemctl stop sigtracker.service || true
fi
dpkg-query -L sigtracker >"$tmp/files"
for f in /usr/sbin/sigtracker /lib/systemd/system/sigtracker.service /etc/sigtracker/sigtracker.conf \
    /usr/share/man/man8/sigtracker.8.gz /usr/share/man/man5/sigtracker.conf.5.gz \
    /usr/share/doc/sigtracker/sigtracker.conf.example /usr/share/doc/sigtracker/copyright; do
    [ -e "$f" ] || fail "the package did not install $f"
done
grep -qx /etc/sigtracker/sigtracker.conf <(dpkg-query -W -f='${Conffiles}\n' sigtracker | awk '{print $1}') ||
    fail "/etc/sigtracker/sigtracker.conf is not a conffile"
got=$(/usr/sbin/sigtracker --version)
[ "$got" = "sigtracker ${version%%-*}" ] || fail "the binary says \"$got\"; the package is $version"
systemd-analyze verify /lib/systemd/system/sigtracker.service || fail "systemd-analyze verify of the installed unit"
/usr/sbin/sigtracker --config /etc/sigtracker/sigtracker.conf --check-config >/dev/null ||
    fail "the packaged configuration does not pass --check-config"
grep -qx 'db = /var/lib/sigtracker/sigtracker.db' /etc/sigtracker/sigtracker.conf ||
    fail "the packaged configuration does not keep the database in /var/lib/sigtracker"
echo "package-test: installed $(wc -l <"$tmp/files") paths; unit verified; configuration checked"

# 4. Start the installed binary as the unit does: its ExecStart, as nobody (the unit uses a
# dynamic user), with a free port and a database of our own added as flags.
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/sigtracker.service)
read -r -a cmd <<<"$exec_start"
[ "${cmd[0]}" = /usr/sbin/sigtracker ] || fail "ExecStart runs ${cmd[0]}"
mkdir -m 0777 "$tmp/state"
as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all)
[ "$(id -u)" -eq 0 ] || as_nobody=() # without root, as ourselves: unprivileged anyway
port=""
for try in 1 2 3 4 5 6 7 8; do
    p=$((20000 + RANDOM % 30000))
    "${as_nobody[@]}" "${cmd[@]}" --host 127.0.0.1 --port "$p" --db "$tmp/state/sigtracker.db" \
        >"$tmp/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 50); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$p/health" 2>/dev/null; then
            port=$p
            break
        fi
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] && break
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    grep -q "cannot listen" "$tmp/server.log" || break # only a taken port is worth a retry
done
[ -n "$port" ] || {
    cat "$tmp/server.log" >&2
    fail "the installed binary did not answer /health"
}
body=$(curl -fsS "http://127.0.0.1:$port/health")
echo "package-test: /health on port $port answered: $body"
kill -HUP "$server_pid"
sleep 0.3
curl -fsS -o /dev/null "http://127.0.0.1:$port/health" || fail "/health after SIGHUP"
grep -q "reload of /etc/sigtracker/sigtracker.conf" "$tmp/server.log" || {
    cat "$tmp/server.log" >&2
    fail "SIGHUP did not reload the packaged file"
}
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
[ "$rc" -eq 0 ] || fail "the server exited $rc after SIGTERM"
[ -s "$tmp/state/sigtracker.db" ] || fail "no database was written in $tmp/state"
echo "package-test: SIGHUP reloaded, SIGTERM stopped it (exit 0)"
# The same start under a stand-in for systemd's notification socket (Type=notify).
scripts/notify-check.py -- "${as_nobody[@]}" "${cmd[@]}" --host 127.0.0.1 --port "$port" \
    --db "$tmp/state/sigtracker.db" --log-level warn || fail "systemd notifications"

# 5. Purge, and check nothing is left. First what systemd would have made for StateDirectory=
# with DynamicUser=yes (the directory under /var/lib/private and the symlink to it), with a
# database in it, so that the purge's removal of the state is tested too.
made_private=0
[ -d /var/lib/private ] || made_private=1
if [ ! -e /var/lib/sigtracker ] && [ ! -L /var/lib/sigtracker ]; then
    $SUDO mkdir -p -m 0700 /var/lib/private
    $SUDO mkdir -p /var/lib/private/sigtracker
    $SUDO cp "$tmp/state/sigtracker.db" /var/lib/private/sigtracker/
    $SUDO ln -s private/sigtracker /var/lib/sigtracker
fi
purge
installed_by_us=0
[ "$made_private" -eq 0 ] || $SUDO rmdir /var/lib/private 2>/dev/null || true
is_installed && fail "sigtracker is still installed after purge"
left=()
while IFS= read -r f; do
    [ "$f" = "/." ] && continue
    if [ -e "$f" ] && [ ! -d "$f" ]; then left+=("$f"); fi
done <"$tmp/files"
for f in /etc/sigtracker /var/lib/sigtracker /var/lib/private/sigtracker /usr/share/doc/sigtracker \
    /etc/systemd/system/multi-user.target.wants/sigtracker.service; do
    if [ -e "$f" ] || [ -L "$f" ]; then left+=("$f"); fi
done
[ "${#left[@]}" -eq 0 ] || fail "left after purge: ${left[*]}"
command -v sigtracker >/dev/null && fail "sigtracker is still on PATH after purge"
man -w sigtracker >/dev/null 2>&1 && fail "man still finds sigtracker(8) after purge"
echo "package-test: purged; nothing left"
echo "package-test: passed"

#!/usr/bin/env python3
"""Checks the systemd notifications of a sigtracker binary, as a Type=notify unit would see
them: binds a datagram socket, starts the server with NOTIFY_SOCKET naming it, and expects
READY=1 once it listens, RELOADING=1 with MONOTONIC_USEC then READY=1 around a SIGHUP, and
STOPPING=1 after SIGTERM, then exit status 0.

    scripts/notify-check.py [--abstract] -- COMMAND [ARGS...]
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def expect(sock, first, proc):
    try:
        msg = sock.recv(4096).decode()
    except socket.timeout:
        proc.kill()
        sys.exit(f"notify-check: no notification (waiting for {first})")
    lines = msg.split("\n")
    if lines[0] != first:
        proc.kill()
        sys.exit(f"notify-check: expected {first}, got {msg!r}")
    return dict(line.split("=", 1) for line in lines)


def main():
    args = sys.argv[1:]
    abstract = args[:1] == ["--abstract"]
    if abstract:
        args = args[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    tmp = tempfile.mkdtemp(prefix="sigtracker-notify-")
    os.chmod(tmp, 0o755)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"@sigtracker-notify-check-{os.getpid()}"
        sock.bind("\0" + name[1:])
    else:
        name = os.path.join(tmp, "notify")
        sock.bind(name)
        os.chmod(name, 0o666)  # the server may run as another user
    sock.settimeout(10)
    proc = subprocess.Popen(args, env=dict(os.environ, NOTIFY_SOCKET=name))
    expect(sock, "READY=1", proc)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    proc.send_signal(signal.SIGHUP)
    got = expect(sock, "RELOADING=1", proc)
    usec = int(got.get("MONOTONIC_USEC", "0"))
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    if not before <= usec <= now:
        proc.kill()
        sys.exit(f"notify-check: MONOTONIC_USEC={usec} is not between {before} and {now}")
    expect(sock, "READY=1", proc)
    proc.send_signal(signal.SIGTERM)
    expect(sock, "STOPPING=1", proc)
    rc = proc.wait(timeout=30)
    if rc != 0:
        sys.exit(f"notify-check: exit status {rc} after SIGTERM")
    if not abstract:
        os.unlink(name)
    os.rmdir(tmp)
    print(f"notify-check: READY, RELOADING (MONOTONIC_USEC), READY, STOPPING on "
          f"{'an abstract' if abstract else 'a path'} socket; exit 0")


main()

#!/usr/bin/env python3
"""Runs one command and prints what it cost the client side, as one line of JSON:
wall ms, user and system CPU ms of the command and every descendant it waited for
(getrusage of the child via wait4), peak RSS (KiB, the largest single process), exit code.

    measure.py [--out FILE] [--stdout FILE] -- COMMAND ARGS...

The fixture servers are not children of the command, so their CPU is not counted.
"""
import json
import os
import subprocess
import sys
import time


def main():
    args = sys.argv[1:]
    out = stdout = None
    while args and args[0] != "--":
        if args[0] == "--out":
            out = args[1]
            args = args[2:]
        elif args[0] == "--stdout":
            stdout = args[1]
            args = args[2:]
        else:
            sys.exit("usage: measure.py [--out FILE] [--stdout FILE] -- COMMAND...")
    cmd = args[1:]
    if not cmd:
        sys.exit("usage: measure.py [--out FILE] [--stdout FILE] -- COMMAND...")
    sink = open(stdout, "wb") if stdout else subprocess.DEVNULL
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    rec = {
        "wall_ms": round(wall * 1000, 2),
        "user_ms": round(ru.ru_utime * 1000, 2),
        "sys_ms": round(ru.ru_stime * 1000, 2),
        "cpu_ms": round((ru.ru_utime + ru.ru_stime) * 1000, 2),
        "maxrss_kib": ru.ru_maxrss,
        "exit": os.waitstatus_to_exitcode(status),
    }
    line = json.dumps(rec)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")
    print(line)


if __name__ == "__main__":
    main()

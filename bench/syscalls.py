#!/usr/bin/env python3
"""Counts the system calls one command spends on its work section, under strace.

The work section is the stretch of the tracing log, on the one thread that does the
work, from the first system call that names START to the last one that names END
(the leaf). A walker that chdir()s down names each component once, so the window
must be bounded by both ends of the path, not by one name. Process
start-up (the dynamic loader, locale, reading the umask) is outside it for every tool
alike, so the counts compare the algorithms, not the runtimes.

usage: syscalls.py START END -- COMMAND [ARGS...]   (prints the count, then the calls)
"""
import os
import re
import subprocess
import sys
import tempfile


def main():
    start, end = sys.argv[1], sys.argv[2]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as log:
        subprocess.run(["strace", "-f", "-qq", "-o", log.name] + cmd, check=True,
                       stdout=subprocess.DEVNULL)
        lines = [l.rstrip("\n") for l in open(log.name)]
    calls = []
    for l in lines:
        m = re.match(r"(\d+)\s+(\w+)\(", l)
        if m:
            calls.append((m.group(1), m.group(2), l))
    named = lambda tok: [i for i, (_, name, l) in enumerate(calls) if tok in l and name != "execve"]
    first, last = named(start), named(end)
    if not first or not last:
        sys.exit(f"no system call names {start!r} or {end!r}")
    tid = calls[first[0]][0]
    window = [c for c in calls[first[0]:last[-1] + 1] if c[0] == tid]
    print(len(window))
    for _, _, l in window:
        print("   ", l.split(" ", 1)[1][:110])


if __name__ == "__main__":
    main()

"""Interleaved timing for bench/lock.sh, counter.sh and write.sh.

Each case is timed in batches; every round runs one batch of every case, in an
order that rotates from round to round, so drift in machine load (other builds,
page cache, thermal) falls on all cases alike. Processes are started with
posix_spawn and reaped with waitpid: no shell between the timer and the tool
unless the idiom being measured is itself a shell command.
"""

import os
import shutil
import statistics
import threading
import time

DEVNULL = os.open(os.devnull, os.O_RDWR)


def resolve(argv):
    exe = argv[0] if "/" in argv[0] else shutil.which(argv[0])
    if exe is None:
        raise SystemExit(f"bench: {argv[0]} not found")
    return [exe] + list(argv[1:])


def run(argv, stdin=None, stdout=None, cwd=None, check=True):
    """Runs argv to completion; returns its exit status."""
    actions = []
    fd_in = None
    if stdin is not None:
        fd_in = os.open(stdin, os.O_RDONLY)
        actions.append((os.POSIX_SPAWN_DUP2, fd_in, 0))
    actions.append((os.POSIX_SPAWN_DUP2, stdout if stdout is not None else DEVNULL, 1))
    old = None
    if cwd is not None:
        old = os.getcwd()
        os.chdir(cwd)
    try:
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    finally:
        if old is not None:
            os.chdir(old)
        if fd_in is not None:
            os.close(fd_in)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if check and code != 0:
        raise SystemExit(f"bench: {argv} exited {code}")
    return code


def batch(argv, calls, workers=1, stdin=None, setup=None):
    """Wall seconds per call for `calls` runs of argv spread over `workers` threads."""
    if setup:
        setup()
    per = calls // workers

    def worker():
        for _ in range(per):
            run(argv, stdin=stdin)

    start = time.perf_counter()
    if workers == 1:
        worker()
    else:
        ts = [threading.Thread(target=worker) for _ in range(workers)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    return (time.perf_counter() - start) / (per * workers)


def interleave(cases, rounds, warmup=1):
    """cases: {name: zero-argument callable returning seconds per call}.
    Returns {name: [seconds per call, one per round]}."""
    names = list(cases)
    for _ in range(warmup):
        for n in names:
            cases[n]()
    out = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            out[n].append(cases[n]())
    return out


def med(xs):
    return statistics.median(xs)


def spread(xs):
    """Half the interquartile range, as a relative figure (noise indicator)."""
    if len(xs) < 4:
        return 0.0
    q = statistics.quantiles(xs, n=4)
    return (q[2] - q[0]) / 2 / statistics.median(xs)


def fmt_time(s):
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.0f} µs"


def cell(xs):
    return f"{fmt_time(med(xs))} ±{spread(xs) * 100:.0f}%"


def replace_section(path, name, body):
    """Rewrites the part of `path` between <!-- name --> markers (appends if absent)."""
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = open(path).read() if os.path.exists(path) else ""
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        a = text.index(start)
        b = text.index(end) + len(end)
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def machine():
    import platform

    load = os.getloadavg()[0]
    return f"{os.cpu_count()} cores, kernel {platform.release()}, load average {load:.1f} at the start"

#!/usr/bin/env bash
# Benchmarks racefree lock against util-linux flock(1): one process per call that
# acquires the lock, runs `true` and releases, uncontended and with 8 contenders.
# Interleaved in one run (bench/interleave.py); writes the lock section of
# bench/RESULTS-primitives.md. Usage: bash bench/lock.sh [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
rounds=${1:-12}
for tool in flock python3; do
  command -v $tool >/dev/null || { echo "bench: needs $tool" >&2; exit 1; }
done
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
PYTHONPATH="$here" python3 - "$root/target/release/racefree" "$rounds" "$here/RESULTS-primitives.md" <<'PY'
import shutil, subprocess, sys
from interleave import *
rf, rounds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
start = machine()
true = resolve(["true"])
cmds = {
    "racefree lock": resolve([rf, "lock", "L", "true"]),
    "flock": resolve(["flock", "L", "true"]),
}
N = 80
# A holder that keeps the lock ~2 ms, so that waiters really wait for a release.
HOLD = ["sh", "-c", ": > /dev/null; sleep 0.002"]
unc = interleave({n: (lambda a=a: batch(a, N)) for n, a in cmds.items()}
                 | {"true alone": lambda: batch(true, N),
                    "racefree --version": lambda: batch(resolve([rf, "--version"]), N),
                    "flock --version": lambda: batch(resolve(["flock", "--version"]), N),
                    "racefree lock --nfs": lambda: batch(resolve([rf, "lock", "--nfs", "L", "true"]), N),
                    "racefree lock -o": lambda: batch(resolve([rf, "lock", "-o", "L", "true"]), N)},
                 rounds)
con = interleave({n: (lambda a=a: batch(a, 8 * 20, workers=8)) for n, a in cmds.items()}
                 | {"racefree lock --nfs": lambda: batch(resolve([rf, "lock", "--nfs", "L", "true"]), 8 * 20, workers=8),
                    "racefree lock -w": lambda: batch(resolve([rf, "lock", "-w", "60", "L", "true"]), 8 * 20, workers=8),
                    "flock -w": lambda: batch(resolve(["flock", "-w", "60", "L", "true"]), 8 * 20, workers=8),
                    "racefree lock -w, 2 ms": lambda: batch(resolve([rf, "lock", "-w", "60", "L"] + HOLD), 8 * 10, workers=8),
                    "flock -w, 2 ms": lambda: batch(resolve(["flock", "-w", "60", "L"] + HOLD), 8 * 10, workers=8)},
                 rounds)
def ratio(a, b): return f"{med(a) / med(b):.2f}x"
ver = subprocess.run(["flock", "--version"], capture_output=True, text=True).stdout.strip()
# CPU time and page faults per call (the tool and its `true`), from perf stat: not
# inflated by waiting for a CPU, so it shows the cost itself on a loaded machine.
def perf(argv):
    r = subprocess.run(["perf", "stat", "-x,", "-e", "task-clock,page-faults", "-r", "50"] + argv,
                       capture_output=True, text=True)
    vals = {}
    for line in r.stderr.splitlines():
        f = line.split(",")
        if len(f) > 3 and f[0].replace(".", "").isdigit():
            vals[f[2]] = float(f[0])
    return vals.get("task-clock"), vals.get("page-faults")
cpu = {"racefree lock": [], "flock": []}
faults = {}
if shutil.which("perf") and perf(["true"])[0] is not None:
    for r in range(rounds):
        for n in (list(cmds) if r % 2 == 0 else list(cmds)[::-1]):
            ms, pf = perf(cmds[n])
            cpu[n].append(ms / 1000)
            faults[n] = pf
if cpu["flock"]:
    cpu_row = (f"| CPU time per call (perf stat task-clock, tool + `true`) | {cell(cpu['racefree lock'])} "
               f"| {cell(cpu['flock'])} | {ratio(cpu['racefree lock'], cpu['flock'])} | |\n"
               f"| page faults per call | {faults['racefree lock']:.0f} | {faults['flock']:.0f} | | |\n")
else:
    cpu_row = "| CPU time per call | (perf not available) | | | |\n"
body = f"""## lock: racefree lock vs flock(1)

`bash bench/lock.sh` — racefree release build vs {ver}; {start}.
Each call is one process that takes the lock on `L`, runs `true` and releases it,
started with posix_spawn by the driver (no shell). {rounds} interleaved rounds;
median time per call ± half the interquartile range across rounds. Ratio is
racefree / flock: below 1 means racefree is faster. Target: within 1.2x uncontended.

| case | racefree lock | flock(1) | ratio | target |
|---|---:|---:|---:|---|
| uncontended, {N} calls per round | {cell(unc["racefree lock"])} | {cell(unc["flock"])} | {ratio(unc["racefree lock"], unc["flock"])} | <= 1.2x |
| 8 contenders, time per call (8 x 20 per round) | {cell(con["racefree lock"])} | {cell(con["flock"])} | {ratio(con["racefree lock"], con["flock"])} | |
| 8 contenders with `-w 60` (a deadline: both block in flock(2) until a timer fires) | {cell(con["racefree lock -w"])} | {cell(con["flock -w"])} | {ratio(con["racefree lock -w"], con["flock -w"])} | |
| the same, each holding the lock ~2 ms (8 x 10 per round) | {cell(con["racefree lock -w, 2 ms"])} | {cell(con["flock -w, 2 ms"])} | {ratio(con["racefree lock -w, 2 ms"], con["flock -w, 2 ms"])} | |
{cpu_row}
Where the time goes (same rounds, uncontended):

| what | time per call |
|---|---:|
| `true` alone (the command both run) | {cell(unc["true alone"])} |
| `racefree --version` (start-up and clap's whole command tree, which lock skips) | {cell(unc["racefree --version"])} |
| `flock --version` | {cell(unc["flock --version"])} |
| `racefree lock -o` (lock fd not inherited) | {cell(unc["racefree lock -o"])} |
| `racefree lock --nfs` (link(2) lock, uncontended) | {cell(unc["racefree lock --nfs"])} |
| `racefree lock --nfs`, 8 contenders (polls, backs off to 100 ms) | {cell(con["racefree lock --nfs"])} |
"""
replace_section(out, "lock", body)
print(body)
PY

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
import subprocess, sys
from interleave import *
rf, rounds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
start = machine()
true = resolve(["true"])
cmds = {
    "racefree lock": resolve([rf, "lock", "L", "true"]),
    "flock": resolve(["flock", "L", "true"]),
}
N = 80
unc = interleave({n: (lambda a=a: batch(a, N)) for n, a in cmds.items()}
                 | {"true alone": lambda: batch(true, N),
                    "racefree --version": lambda: batch(resolve([rf, "--version"]), N),
                    "flock --version": lambda: batch(resolve(["flock", "--version"]), N),
                    "racefree lock --nfs": lambda: batch(resolve([rf, "lock", "--nfs", "L", "true"]), N),
                    "racefree lock -o": lambda: batch(resolve([rf, "lock", "-o", "L", "true"]), N)},
                 rounds)
con = interleave({n: (lambda a=a: batch(a, 8 * 20, workers=8)) for n, a in cmds.items()}
                 | {"racefree lock --nfs": lambda: batch(resolve([rf, "lock", "--nfs", "L", "true"]), 8 * 20, workers=8)},
                 rounds)
ver = subprocess.run(["flock", "--version"], capture_output=True, text=True).stdout.strip()
def ratio(a, b): return f"{med(a) / med(b):.2f}x"
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

Where the time goes (same rounds, uncontended):

| what | time per call |
|---|---:|
| `true` alone (the command both run) | {cell(unc["true alone"])} |
| `racefree --version` (start-up and argument parsing only) | {cell(unc["racefree --version"])} |
| `flock --version` | {cell(unc["flock --version"])} |
| `racefree lock -o` (lock fd not inherited) | {cell(unc["racefree lock -o"])} |
| `racefree lock --nfs` (link(2) lock, uncontended) | {cell(unc["racefree lock --nfs"])} |
| `racefree lock --nfs`, 8 contenders (polls, backs off to 100 ms) | {cell(con["racefree lock --nfs"])} |
"""
replace_section(out, "lock", body)
print(body)
PY

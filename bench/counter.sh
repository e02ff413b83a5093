#!/usr/bin/env bash
# Benchmarks racefree counter against the shell idiom scripts use instead:
# flock(1) around a read-modify-write of the file, done correctly (the new value is
# written to a temporary file and renamed, so readers never see a torn number), and
# the common in-place variant. 8 racers increment one counter; every batch checks
# that no increment was lost. Interleaved rounds (bench/interleave.py); writes the
# counter section of bench/RESULTS-primitives.md. Usage: bash bench/counter.sh [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
rounds=${1:-10}
for tool in flock python3; do
  command -v $tool >/dev/null || { echo "bench: needs $tool" >&2; exit 1; }
done
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
PYTHONPATH="$here" python3 - "$root/target/release/racefree" "$rounds" "$here/RESULTS-primitives.md" <<'PY'
import os, sys
from interleave import *
rf, rounds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
start = machine()
RACERS = 8
rename_idiom = 'n=$(cat F) && n=$((n+1)) && echo $n > F.tmp && mv F.tmp F && echo $n'
rename_sync = 'n=$(cat F) && n=$((n+1)) && echo $n > F.tmp && sync F.tmp && mv F.tmp F && sync . && echo $n'
inplace_idiom = 'n=$(cat F) && n=$((n+1)) && echo $n > F && echo $n'
cases = {
    "racefree counter": (resolve([rf, "counter", "F"]), 8 * 25),
    "flock + cat/echo + mv": (resolve(["flock", "F.lock", "sh", "-c", rename_idiom]), 8 * 25),
    "flock + cat/echo in place": (resolve(["flock", "F.lock", "sh", "-c", inplace_idiom]), 8 * 25),
    "racefree counter --sync": (resolve([rf, "counter", "--sync", "F"]), 8 * 10),
    "flock + cat/echo + sync + mv + sync": (resolve(["flock", "F.lock", "sh", "-c", rename_sync]), 8 * 10),
}
def make(argv, calls):
    def one():
        with open("F", "w") as f:
            f.write("0\n")
        t = batch(argv, calls, workers=RACERS)
        got = int(open("F").read())
        if got != calls:
            raise SystemExit(f"bench: {argv}: {calls} increments gave {got}")
        return t
    return one
res = interleave({n: make(*c) for n, c in cases.items()}, rounds)
def rate(xs): return f"{1 / med(xs):,.0f}/s ±{spread(xs) * 100:.0f}%"
def ratio(a, b): return f"{med(b) / med(a):.2f}x"
rc, rn, ri = res["racefree counter"], res["flock + cat/echo + mv"], res["flock + cat/echo in place"]
sc, sn = res["racefree counter --sync"], res["flock + cat/echo + sync + mv + sync"]
body = f"""## counter: racefree counter vs flock(1) around cat/echo

`bash bench/counter.sh` — racefree release build; {start}.
{RACERS} racers (threads of the driver, each starting one process per increment with
posix_spawn) increment one counter file; each batch starts from 0 and checks that the
final value equals the number of increments (none was lost, for every tool).
{rounds} interleaved rounds; median increments per second ± half the interquartile
range. Ratio is racefree's rate / the idiom's: above 1 means racefree is faster.
Target: faster than the idiom.

The idioms, each run as `flock F.lock sh -c '...'`:
- correct: `{rename_idiom}`
- in place (the common one; a reader can see an empty file): `{inplace_idiom}`
- durable: `{rename_sync}`

| case | racefree counter | idiom | ratio | target |
|---|---:|---:|---:|---|
| vs flock + cat/echo + mv (same guarantees) | {rate(rc)} | {rate(rn)} | {ratio(rc, rn)} | > 1 |
| vs flock + cat/echo in place | {rate(rc)} | {rate(ri)} | {ratio(rc, ri)} | |
| `--sync` vs the idiom with sync(1) on file and directory | {rate(sc)} | {rate(sn)} | {ratio(sc, sn)} | |

Where the time goes: racefree does one process per increment (start-up, flock on
F.lock, read, O_TMPFILE write, linkat, rename); the idiom starts flock, sh, cat and mv
(four processes, two of them shells' forks). With --sync both are bound by the two
fsyncs, which are the same work for both.
"""
replace_section(out, "counter", body)
print(body)
PY

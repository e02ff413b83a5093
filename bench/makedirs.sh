#!/usr/bin/env bash
# Benchmarks racefree makedirs against coreutils mkdir -p, side by side in one run.
# Writes bench/RESULTS-makedirs.md. Needs strace, hyperfine and python3
# (apt-get install strace hyperfine). Usage: bash bench/makedirs.sh [DIRS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
dirs=${1:-100000}
for tool in strace hyperfine python3; do
  command -v $tool >/dev/null || { echo "bench: needs $tool (apt-get install $tool)" >&2; exit 1; }
done
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
rf="$root/target/release/racefree"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
out="$here/RESULTS-makedirs.md"

count() { python3 "$here/syscalls.py" "$@" > calls.txt; head -1 calls.txt; }

# 1. System calls in the work section (one thread, first to last call naming the path).
# The base directory exists; the five levels below it are the work.
rf_path=rfbase/rfA1/rfA2/rfA3/rfA4/rfA5
cu_path=cubase/cuB1/cuB2/cuB3/cuB4/cuB5
rf_new=$(mkdir rfbase && count rfbase rfA5 -- "$rf" makedirs $rf_path); cp calls.txt rf_new.txt
cu_new=$(mkdir cubase && count cubase cuB5 -- mkdir -p $cu_path); cp calls.txt cu_new.txt
rf_old=$(count rfbase rfA5 -- "$rf" makedirs $rf_path); cp calls.txt rf_old.txt
cu_old=$(count cubase cuB5 -- mkdir -p $cu_path); cp calls.txt cu_old.txt

# 2. Wall time for a whole tree from a list: 10 x 10 x 10 x (dirs/1000) leaves.
per=$((dirs / 1000))
python3 - "$per" > list0 <<'PY'
import sys
per = int(sys.argv[1])
out = sys.stdout
for a in range(10):
    for b in range(10):
        for c in range(10):
            for d in range(per):
                out.write(f"tree/a{a}/b{b}/c{c}/d{d}\0")
PY
leaves=$(tr -cd '\0' < list0 | wc -c)
hyperfine --style basic --warmup 1 --runs 5 --export-json create.json \
  --prepare 'rm -rf tree' \
  -n racefree "$rf makedirs -0 --from list0" \
  -n 'xargs -0 mkdir -p' "xargs -0 mkdir -p < list0" >/dev/null
hyperfine --style basic --warmup 1 --runs 10 --export-json existing.json \
  --setup "$rf makedirs -0 --from list0" \
  -n racefree "$rf makedirs -0 --from list0" \
  -n 'xargs -0 mkdir -p' "xargs -0 mkdir -p < list0" >/dev/null

python3 - "$out" "$leaves" "$rf_old" "$cu_old" "$rf_new" "$cu_new" <<'PY'
import json, subprocess, sys, platform, os
out, leaves, rf_old, cu_old, rf_new, cu_new = sys.argv[1:]
def times(f):
    r = {x["command"]: x for x in json.load(open(f))["results"]}
    return r["racefree"], r["xargs -0 mkdir -p"]
def ms(x): return f'{x["mean"]*1000:.0f} ± {x["stddev"]*1000:.0f} ms'
c_rf, c_cu = times("create.json")
e_rf, e_cu = times("existing.json")
cu_ver = subprocess.run(["mkdir", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
dirs = int(leaves) + 1 + 10 + 100 + 1000
calls = ""
for name, title in [("rf_old", "racefree, existing"), ("cu_old", "coreutils, existing"),
                    ("rf_new", "racefree, 5 missing"), ("cu_new", "coreutils, 5 missing")]:
    body = "".join(open(name + ".txt").readlines()[1:])
    calls += f"<details><summary>{title}</summary>\n\n```\n{body}```\n</details>\n"
with open(out, "w") as f:
    f.write(f"""# makedirs benchmark results

Produced by `bash bench/makedirs.sh` (racefree release build vs {cu_ver}), on
{os.cpu_count()} cores, kernel {platform.release()}. Both tools run in the same script run;
ratios are coreutils / racefree, so above 1 means racefree is better.

## System calls in the work section

Counted with strace (`bench/syscalls.py`): the calls the working thread makes from the
first that names the existing base directory to the last that names the leaf; process
start-up (loader, locale, umask) is outside it for both tools. The calls themselves:

| case | racefree | coreutils mkdir -p | ratio | target |
|---|---:|---:|---:|---|
| existing 5-level path | {rf_old} | {cu_old} | {int(cu_old)/int(rf_old):.1f}x | racefree <= 2 |
| 5 missing levels | {rf_new} | {cu_new} | {int(cu_new)/int(rf_new):.1f}x | racefree <= 11 |

{calls}

## A whole tree from a list

{int(leaves):,} leaf paths (10 x 10 x 10 x {int(leaves)//1000}, {dirs:,} directories in all),
NUL-separated; `racefree makedirs -0 --from list` against `xargs -0 mkdir -p < list`.
hyperfine, mean ± standard deviation.

| case | racefree | xargs -0 mkdir -p | ratio | target |
|---|---:|---:|---:|---|
| create the tree (rm -rf before each run) | {ms(c_rf)} | {ms(c_cu)} | {c_cu["mean"]/c_rf["mean"]:.2f}x | >= 1.5x |
| tree already exists | {ms(e_rf)} | {ms(e_cu)} | {e_cu["mean"]/e_rf["mean"]:.2f}x | |
""")
print(open(out).read())
PY

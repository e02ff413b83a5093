#!/usr/bin/env bash
# racefree ident serve against oidentd under concurrent queries, side by side in one
# run (a benchmark, not a test). Writes bench/RESULTS-identd.md.
# Usage: bash bench/identd.sh [SOCKETS...]        (default: 2000 18000)
#   env: CLIENTS (32, standalone), INETD_CLIENTS (8), SECS per measurement (5),
#        ROUNDS (3), PROFILE=0 to skip perf/strace
#
# Two settings, in the same run: quiet (racefree --log none, oidentd -q; the
# reference) and logging (racefree --log syslog, oidentd's default syslog).
#
# Standalone, at every socket count: racefree with its default source (auto),
# racefree --source proc (the reader for hosts without sock_diag; quiet only), and
# Debian's oidentd (`oidentd -i -a 127.0.0.1 -p PORT`), CLIENTS clients.
# Under inetd, at the first socket count: Debian's xinetd starts a server per
# connection (wait = no, user = root, its own logging off): racefree `ident serve`
# (no --user), the shipped line `ident serve --user nobody` (a privileged helper
# per query), and `oidentd -I`, INETD_CLIENTS clients; then one client, one query
# at a time, for the latency of a single inetd query.
#
# bench/identd_load.rs is the client: a new connection per query, each client asking
# about a loopback connection of its own. Sockets are held open by
# bench/ident_sockets.rs. ROUNDS rounds measure every server of a group one after
# another, the order rotating per round, so drift in this VM's speed hits all alike.
#
# Syslog: with no syslog daemon here (no /dev/log), a server's log lines would cost
# a failed connect, not a log; so when run as root without /dev/log, the bench runs
# in a private mount namespace whose /dev (a tmpfs holding the usual device nodes,
# nothing of the host's /dev is touched) has a /dev/log read by a stand-in daemon
# that discards each line, as rsyslog would after its own work.
#
# Targets (issue 15), quiet: the default source >= oidentd's queries/s standalone at
# 2,000 and 18,000 sockets, and plain `ident serve` >= `oidentd -I` under inetd at
# 2,000.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(2000 18000)
clients=${CLIENTS:-32}
inetd_clients=${INETD_CLIENTS:-8}
secs=${SECS:-5}
rounds=${ROUNDS:-3}
profile=${PROFILE:-1}

if [ -z "${IDENTD_BENCH_INSIDE:-}" ]; then
  need=()
  command -v oidentd >/dev/null || need+=(oidentd)
  command -v xinetd >/dev/null || need+=(xinetd)
  if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
      echo "bench: needs ${need[*]} (apt-get install ${need[*]})" >&2; exit 1
    fi
  fi
  command -v python3 >/dev/null || { echo "bench: needs python3" >&2; exit 1; }
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin racefree \
    --example ident_sockets --example identd_load
  if [ "$(id -u)" = 0 ] && [ ! -S /dev/log ]; then
    exec env IDENTD_BENCH_INSIDE=ns unshare --mount --propagation private bash "$0" "$@"
  fi
  export IDENTD_BENCH_INSIDE=host
fi

rf="$root/target/release/racefree"
holder="$root/target/release/examples/ident_sockets"
load="$root/target/release/examples/identd_load"
work=$(mktemp -d)
holders=()
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for fd in "${holders[@]}"; do eval "exec $fd>&-"; done
  wait 2>/dev/null || true
  if [ "${keep:-0}" = 1 ]; then echo "bench: raw measurements kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
out="$here/RESULTS-identd.md"
uptime > "$work/uptime.start"

syslog_note="a syslog daemon was running (/dev/log)"
if [ "$IDENTD_BENCH_INSIDE" = ns ]; then
  # This mount namespace's own /dev: the device nodes the servers and tools open,
  # and a log socket. The host's /dev is not touched.
  mount -t tmpfs -o mode=755 benchdev /dev
  for node in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0" "console 5 1"; do
    set -- $node; mknod -m 666 "/dev/$1" c "$2" "$3"
  done
  ln -s /proc/self/fd /dev/fd
  ln -s /proc/self/fd/0 /dev/stdin; ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
  python3 - "$work/syslog.count" <<'PY' &
import os, signal, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
n = 0
def done(*_):
    open(sys.argv[1], "w").write(str(n))
    sys.exit(0)
signal.signal(signal.SIGTERM, done)
while True:
    s.recv(65536)
    n += 1
PY
  pids+=($!); syslog_pid=$!
  until [ -S /dev/log ]; do sleep 0.1; done
  syslog_note="no syslog daemon runs on this machine, so the bench ran in a private mount namespace whose /dev/log a stand-in daemon read and discarded"
elif [ ! -S /dev/log ]; then
  syslog_note="no syslog daemon ran (no /dev/log; not root, so no stand-in): a logging server's lines went nowhere"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { until python3 -c "import socket; socket.create_connection(('127.0.0.1', $1)).close()" 2>/dev/null; do sleep 0.1; done; }

# Standalone servers: name, then the command (racefree says where it listens).
start_racefree() { # name args...
  local name=$1; shift
  "$rf" ident serve --listen 127.0.0.1:0 "$@" > "$work/$name.out" &
  pids+=($!); echo $! > "$work/$name.pid"
  until grep -q '^listening on' "$work/$name.out" 2>/dev/null; do sleep 0.1; done
  sed -n 's/^listening on //p' "$work/$name.out" > "$work/$name.addr"
}
start_oidentd() { # name args...
  local name=$1 port; shift
  port=$(free_port)
  oidentd -i -a 127.0.0.1 -p "$port" "$@" &
  pids+=($!); echo $! > "$work/$name.pid"
  echo "127.0.0.1:$port" > "$work/$name.addr"
  wait_port "$port"
}
start_racefree auto.quiet --log none
start_racefree auto.logging --log syslog
start_racefree proc.quiet --source proc --log none
start_oidentd oidentd.quiet -q
start_oidentd oidentd.logging
standalone=(auto.quiet auto.logging proc.quiet oidentd.quiet oidentd.logging)

# Under inetd: one xinetd, a service per server, its own logging off.
inetd=(i-rf.quiet i-rf.logging i-rfuser.quiet i-rfuser.logging i-oidentd.quiet i-oidentd.logging)
{
  printf 'defaults\n{\n\tinstances = UNLIMITED\n\tper_source = UNLIMITED\n\tcps = 100000 1\n'
  printf '\tlog_type = FILE /dev/null\n\tlog_on_success =\n\tlog_on_failure =\n}\n'
  for s in "${inetd[@]}"; do
    port=$(free_port); echo "127.0.0.1:$port" > "$work/$s.addr"
    case $s in
      i-rf.quiet) server=$rf; args="ident serve --log none" ;;
      i-rf.logging) server=$rf; args="ident serve" ;;
      i-rfuser.quiet) server=$rf; args="ident serve --user nobody --log none" ;;
      i-rfuser.logging) server=$rf; args="ident serve --user nobody" ;;
      i-oidentd.quiet) server=$(command -v oidentd); args="-I -q" ;;
      i-oidentd.logging) server=$(command -v oidentd); args="-I" ;;
    esac
    printf 'service %s\n{\n\ttype = UNLISTED\n\tsocket_type = stream\n\tprotocol = tcp\n' "$s"
    printf '\twait = no\n\tuser = root\n\tbind = 127.0.0.1\n\tport = %s\n' "$port"
    printf '\tserver = %s\n\tserver_args = %s\n}\n' "$server" "$args"
  done
} > "$work/xinetd.conf"
xinetd -dontfork -f "$work/xinetd.conf" -pidfile "$work/xinetd.pidfile" &
pids+=($!); echo $! > "$work/xinetd.pid"
for s in "${inetd[@]}"; do wait_port "$(cut -d: -f2 "$work/$s.addr")"; done
one=(i-rf.quiet i-rfuser.quiet i-oidentd.quiet)

# Sockets: as many holder processes as RLIMIT_NOFILE requires.
hard=$(ulimit -Hn); [ "$hard" = unlimited ] && hard=1000000
per=$(( (hard - 1000) / 2 * 2 )); [ "$per" -gt 60000 ] && per=60000
in_use() { awk '/^TCP/ { for (i = 1; i < NF; i++) if ($i == "inuse") n += $(i+1) } END { print n + 0 }' /proc/net/sockstat /proc/net/sockstat6; }
hold_until() {
  local want=$1 i=${#holders[@]}
  while [ "$(in_use)" -lt "$want" ]; do
    local need=$(( want - $(in_use) ))
    [ "$need" -gt "$per" ] && need=$per
    [ "$need" -lt 2 ] && need=2
    mkfifo "$work/in.$i"
    "$holder" hold "$need" < "$work/in.$i" > "$work/hold.$i" &
    exec {fd}> "$work/in.$i"
    holders+=("$fd")
    until grep -q '^ready' "$work/hold.$i" 2>/dev/null; do sleep 0.2; done
    i=$((i + 1))
  done
}

measure() { # group server level round clients
  "$load" "$(cat "$work/$2.addr")" "$5" "$secs" > "$work/m.$1.$3.$4.$2.json"
  echo "bench: $1, $3 sockets, round $4, $2: $(cat "$work/m.$1.$3.$4.$2.json")" >&2
}
rotate() { # group level clients servers...
  local group=$1 level=$2 n_clients=$3; shift 3
  local servers=("$@") n=$# round k
  for round in $(seq 1 "$rounds"); do
    for k in $(seq 0 $((n - 1))); do
      measure "$group" "${servers[$(( (k + round) % n ))]}" "$level" "$round" "$n_clients"
    done
  done
}

inetd_level=${levels[0]}
for level in "${levels[@]}"; do
  hold_until "$level"
  echo "$(in_use)" > "$work/have.$level"
  rotate standalone "$level" "$clients" "${standalone[@]}"
  if [ "$level" = "$inetd_level" ]; then
    rotate inetd "$level" "$inetd_clients" "${inetd[@]}"
    rotate one "$level" 1 "${one[@]}"
  fi
done

# Where the time goes. CPU per query under the same load (perf stat): each
# standalone quiet server at the last socket count; each inetd quiet service at
# the first, counting xinetd and every server it starts (perf follows its forks).
# Syscalls per query (strace -c) for the standalone servers, and perf's hottest
# symbols for racefree's default source and oidentd.
last=${levels[-1]}
if [ "$profile" = 1 ]; then
  xpid=$(cat "$work/xinetd.pid")
  for s in auto.quiet proc.quiet oidentd.quiet i-rf.quiet i-rfuser.quiet i-oidentd.quiet; do
    case $s in i-*) pid=$xpid; n=$inetd_clients ;; *) pid=$(cat "$work/$s.pid"); n=$clients ;; esac
    if command -v perf >/dev/null; then
      perf stat -e task-clock,context-switches -p "$pid" -o "$work/perf.$s.txt" -- sleep "$secs" &
      sp=$!
      "$load" "$(cat "$work/$s.addr")" "$n" "$secs" > "$work/perfload.$s.json"
      wait "$sp" || true
    fi
  done
  for s in auto.quiet proc.quiet oidentd.quiet; do
    pid=$(cat "$work/$s.pid")
    if command -v strace >/dev/null; then
      timeout $((secs + 5)) strace -c -f -p "$pid" -o "$work/strace.$s.txt" &
      sp=$!
      sleep 0.5
      "$load" "$(cat "$work/$s.addr")" "$clients" "$secs" > "$work/straceload.$s.json"
      kill -INT "$sp" 2>/dev/null || true
      wait "$sp" || true
    fi
  done
  if command -v perf >/dev/null; then
    for s in auto.quiet oidentd.quiet; do
      pid=$(cat "$work/$s.pid")
      perf record -q -F 499 -g -p "$pid" -o "$work/perf.$s.data" -- sleep "$secs" 2>/dev/null &
      sp=$!
      "$load" "$(cat "$work/$s.addr")" "$clients" "$secs" > /dev/null
      wait "$sp" || true
      perf report -i "$work/perf.$s.data" --stdio --no-children --sort symbol 2>/dev/null \
        | grep -E '^ +[0-9.]+%' | head -12 > "$work/perfrep.$s.txt" || true
    done
  fi
fi
uptime > "$work/uptime.end"
if [ -n "${syslog_pid:-}" ]; then kill "$syslog_pid"; wait "$syslog_pid" 2>/dev/null || true; fi

keep=1  # until the report is written, a failure keeps the raw measurements
python3 - "$work" "$out" "$clients" "$inetd_clients" "$secs" "$rounds" "$profile" "$syslog_note" "${levels[@]}" <<'PY'
import json, os, platform, statistics, sys
work, out, clients, inetd_clients, secs, rounds, profile, syslog_note, *levels = sys.argv[1:]
rounds = int(rounds)
names = {
    "auto": "racefree (default source: auto)", "proc": "racefree --source proc",
    "oidentd": "oidentd 2.5 (Debian)",
    "i-rf": "racefree ident serve", "i-rfuser": "racefree ident serve --user nobody",
    "i-oidentd": "oidentd -I",
}
settings = {"quiet": "quiet", "logging": "logging"}
def load(group, level, r, s):
    return json.load(open(f"{work}/m.{group}.{level}.{r}.{s}.json"))
def med(xs):
    return statistics.median(xs)
def got(group, level, s):
    return [load(group, level, r, s) for r in range(1, rounds + 1)]
def ratio(group, level, s, ref):
    """Median over rounds of s's queries/s over ref's in the same round."""
    return med([a["qps"] / b["qps"] for a, b in zip(got(group, level, s), got(group, level, ref))])
def ratios(group, level, s, ref):
    return sorted(a["qps"] / b["qps"] for a, b in zip(got(group, level, s), got(group, level, ref)))
def bad(ms):
    n = sum(m["not_userid"] for m in ms)
    how = ", ".join(f"{k.replace('_', ' ')} {c}" for k in ("closed_unanswered", "other_reply", "io_error")
                    if (c := sum(m.get(k, 0) for m in ms)))
    return f"{n} ({how})" if how else f"{n}"
def row(group, level, s, ref, label_level):
    ms = got(group, level, s)
    qps = [m["qps"] for m in ms]
    p50 = med([m["p50_ms"] for m in ms])
    p99 = med([m["p99_ms"] for m in ms])
    base, setting = s.rsplit(".", 1)
    rs = ratios(group, level, s, ref)
    return (f"| {label_level} | {setting} | {names[base]} | {med(qps):,.0f} ({min(qps):,.0f} to {max(qps):,.0f}) "
            f"| {p50:.2f} | {p99:.1f} | {med(rs):.2f}x ({rs[0]:.2f} to {rs[-1]:.2f}) | {bad(ms)} |")
def have(level):
    return open(f"{work}/have.{level}").read().strip()
def met(x):
    return "met" if x >= 1 else "NOT met"

verdicts, sa_rows, in_rows, one_rows = [], [], [], []
for level in levels:
    lab = f"{level} ({have(level)})"
    for s in ["auto.quiet", "proc.quiet", "oidentd.quiet", "auto.logging", "oidentd.logging"]:
        ref = "oidentd." + s.rsplit(".", 1)[1]
        sa_rows.append(row("standalone", level, s, ref, lab))
    r = ratio("standalone", level, "auto.quiet", "oidentd.quiet")
    verdicts.append(f"- Standalone, {level} sockets, {clients} clients, quiet: the default source "
                    f"{r:.2f}x oidentd's queries/s; target >= 1x: {met(r)}. Logging: "
                    f"{ratio('standalone', level, 'auto.logging', 'oidentd.logging'):.2f}x.")
lvl = levels[0]
lab = f"{lvl} ({have(lvl)})"
for s in ["i-rf.quiet", "i-rfuser.quiet", "i-oidentd.quiet", "i-rf.logging", "i-rfuser.logging", "i-oidentd.logging"]:
    ref = "i-oidentd." + s.rsplit(".", 1)[1]
    in_rows.append(row("inetd", lvl, s, ref, lab))
r = ratio("inetd", lvl, "i-rf.quiet", "i-oidentd.quiet")
ru = ratio("inetd", lvl, "i-rfuser.quiet", "i-oidentd.quiet")
verdicts.append(f"- Under inetd, {lvl} sockets, {inetd_clients} clients, quiet: `ident serve` "
                f"{r:.2f}x `oidentd -I`'s queries/s; target >= 1x: {met(r)}. Logging: "
                f"{ratio('inetd', lvl, 'i-rf.logging', 'i-oidentd.logging'):.2f}x. The shipped line "
                f"(`--user nobody`): {ru:.2f}x quiet, "
                f"{ratio('inetd', lvl, 'i-rfuser.logging', 'i-oidentd.logging'):.2f}x logging.")
p50 = {s: med([m["p50_ms"] for m in got("one", lvl, s)]) for s in ["i-rf.quiet", "i-rfuser.quiet", "i-oidentd.quiet"]}
for s in ["i-rf.quiet", "i-rfuser.quiet", "i-oidentd.quiet"]:
    one_rows.append(row("one", lvl, s, "i-oidentd.quiet", lab))
verdicts.append(f"- One inetd query at a time, quiet: {p50['i-rf.quiet']:.2f} ms (p50) for `ident serve`, "
                f"{p50['i-oidentd.quiet']:.2f} ms for `oidentd -I`; `--user` adds "
                f"{p50['i-rfuser.quiet'] - p50['i-rf.quiet']:.2f} ms (a privileged helper forked per query).")

def read(name):
    p = f"{work}/{name}"
    return open(p).read().rstrip() if os.path.exists(p) else "(not measured)"
def cpu_per_query(s):
    try:
        q = json.loads(read(f"perfload.{s}.json"))["queries"]
        ms = next(float(l.split()[0].replace(",", "")) for l in read(f"perf.{s}.txt").splitlines() if "task-clock" in l)
        return ms / q
    except Exception:
        return None
def calls_per_query(s, calls):
    try:
        q = json.loads(read(f"straceload.{s}.json"))["queries"]
        n = 0
        for l in read(f"strace.{s}.txt").splitlines():
            f = l.split()
            if len(f) >= 5 and f[-1] in calls:
                n += int(f[3])
        return n / q
    except Exception:
        return None
def fmt(x, spec):
    return "?" if x is None else format(x, spec)
prof = ""
if profile == "1":
    cpu_rows = "\n".join(
        f"| {where} | {names[s.rsplit('.', 1)[0]]} | {fmt(cpu_per_query(s), '.2f')} |"
        for where, s in [(f"standalone, {levels[-1]} sockets", "auto.quiet"),
                         (f"standalone, {levels[-1]} sockets", "proc.quiet"),
                         (f"standalone, {levels[-1]} sockets", "oidentd.quiet"),
                         (f"inetd (with xinetd), {lvl} sockets", "i-rf.quiet"),
                         (f"inetd (with xinetd), {lvl} sockets", "i-rfuser.quiet"),
                         (f"inetd (with xinetd), {lvl} sockets", "i-oidentd.quiet")])
    strace = "\n".join(f"== {s}\n" + "\n".join(read(f"strace.{s}.txt").splitlines()[:12])
                       for s in ["auto.quiet", "proc.quiet", "oidentd.quiet"])
    prof = f"""
## Where the time goes

CPU per query, quiet: task-clock (`perf stat -p`) over one {secs} s load divided by
its queries. Standalone, the server process; under inetd, xinetd and every server
it started (perf follows the forks), so the superserver's own share is in all three.

| where | server | CPU ms per query |
|---|---|---:|
{cpu_rows}

Syscalls under the same standalone load at {levels[-1]} sockets (`strace -c -f`;
strace slows every syscall, so only the mix and the counts per query mean anything);
`read` calls per query {fmt(calls_per_query("auto.quiet", {"read"}), ".1f")} (auto) /
{fmt(calls_per_query("proc.quiet", {"read"}), ".1f")} (proc) / {fmt(calls_per_query("oidentd.quiet", {"read"}), ".1f")} (oidentd);
thread or process starts (`clone`, `clone3`) {fmt(calls_per_query("auto.quiet", {"clone", "clone3"}), ".2f")} /
{fmt(calls_per_query("proc.quiet", {"clone", "clone3"}), ".2f")} / {fmt(calls_per_query("oidentd.quiet", {"clone", "clone3"}), ".2f")}:

```
{strace}
```

Hottest symbols, `perf record -g` (kernel and user), racefree with the default source:

```
{read("perfrep.auto.quiet.txt")}
```

and oidentd:

```
{read("perfrep.oidentd.quiet.txt")}
```
"""
count = read("syslog.count")
logged = f" The stand-in syslog daemon received {int(count):,} lines in all." if count.isdigit() else ""
text = f"""# identd under concurrent queries: racefree vs oidentd

Produced by `bash bench/identd.sh {' '.join(levels)}` (reproduce with exactly that;
CLIENTS={clients} INETD_CLIENTS={inetd_clients} SECS={secs} ROUNDS={rounds}), racefree release
build, {os.cpu_count()} cores, kernel {platform.release()}. Load average (`uptime`) when the run
started: {read("uptime.start").split("load average:")[-1].strip()}; when it ended:
{read("uptime.end").split("load average:")[-1].strip()}. A benchmark, not a test: numbers vary run
to run on a shared VM, which is why every server of a group is measured in the same
run, interleaved, with the order rotating each round.

Each measurement: concurrent clients for {secs} s, a new TCP connection per query
(closed with a reset, so no TIME_WAIT rows pile up), each client asking about a
loopback connection of its own. Two settings: **quiet**, the reference (racefree
`--log none`, oidentd `-q`), and **logging** (racefree `--log syslog`, under inetd its
default; oidentd's default, syslog). Syslog: {syslog_note}.{logged}

- **Standalone**: racefree `ident serve --listen 127.0.0.1:0` with the default source
  (auto: sock_diag here) and with `--source proc`, and `oidentd -i -a 127.0.0.1 -p
  PORT`; {clients} clients.
- **Under inetd**: Debian's xinetd (wait = no, user = root, its own logging off)
  starts a server per connection: `racefree ident serve` (no `--user`), the shipped
  line `racefree ident serve --user nobody`, and `oidentd -I`; {inetd_clients} clients,
  then one client asking one query at a time.

## Summary

{chr(10).join(verdicts)}

## Standalone: queries per second and latency

Median of {rounds} rounds (lowest to highest); the ratio to oidentd in the same
setting is taken per round, between measurements adjacent in time, then the median
round. "not USERID" counts replies that were not a USERID answer, and how: "closed
unanswered", a connection the server closed without a reply (racefree does so past
`--max-conns`); "io error", a failed connect, write or read, or no reply within 30 s.

| sockets held (TCP in use) | setting | server | queries/s | p50 ms | p99 ms | vs oidentd | not USERID |
|---|---|---|---:|---:|---:|---:|---:|
{chr(10).join(sa_rows)}

## Under inetd ({inetd_clients} clients)

| sockets held (TCP in use) | setting | server | queries/s | p50 ms | p99 ms | vs oidentd -I | not USERID |
|---|---|---|---:|---:|---:|---:|---:|
{chr(10).join(in_rows)}

## One inetd query at a time (1 client)

| sockets held (TCP in use) | setting | server | queries/s | p50 ms | p99 ms | vs oidentd -I | not USERID |
|---|---|---|---:|---:|---:|---:|---:|
{chr(10).join(one_rows)}
{prof}"""
open(out, "w").write(text)
print(text)
PY
keep=0

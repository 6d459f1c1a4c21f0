"""Where a stall's time went: each thread's time on a core and waiting for one, and the host's steal.

A 1000-stream run that loses streams usually loses them in one moment (`fell behind at` in
`firstspike bench`). The GC logs of `bench/gc_pauses` rule collections in or out; this rules the
scheduler in or out. `record` polls, every 20 ms, `/proc/<pid>/task/<tid>/schedstat` (nanoseconds on
a core, nanoseconds runnable but waiting for one) of the server and of every `firstspike bench`
process and its generator workers, and the host's `/proc/stat`, whose `steal` column counts the time
the hypervisor gave this VM's virtual CPUs to someone else. `report` lines the trace up with the
bench's `--json` summary and prints, for each moment sessions fell behind, the 1.5 s before it in
100 ms windows, and every poll in the run that saw steal.

    .venv/bin/firstspike serve --port 8032 --log-level warning &  SERVER=$!
    .venv/bin/python bench/sched_trace.py record --server-pid $SERVER --out trace.jsonl &
    .venv/bin/firstspike bench --url ws://127.0.0.1:8032/v1/stream --streams 1000 --ramp 10 \\
        --duration 60 --audio /tmp/streams --server-pid $SERVER --json run.json
    kill -INT $SERVER     # record stops when the server exits
    .venv/bin/python bench/sched_trace.py report --trace trace.jsonl --run run.json

Polling an idle server's 7 threads for 20 s took 0.22 s of CPU here, about 1 % of one core; a
1000-stream run has about 15 threads to read. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

POLL_S = 0.02
RESCAN_S = 1.0
STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


# --- record -----------------------------------------------------------------------------------------

def host_ticks() -> list[int]:
    """The first eight cumulative columns of /proc/stat's `cpu` line (clock ticks, all CPUs)."""
    with open("/proc/stat") as stat:
        return [int(x) for x in stat.readline().split()[1 : 1 + len(STAT_FIELDS)]]


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:  # the process or thread has gone: workers and threads come and go during a run
        return None


def find_processes(server_pid: int) -> dict[int, str]:
    """The server, every `firstspike bench` process, and the children of those (generator workers)."""
    roles = {server_pid: "server"}
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == server_pid:
            continue
        cmdline = _read(f"/proc/{entry}/cmdline")
        status = _read(f"/proc/{entry}/status")
        if cmdline is None or status is None:
            continue
        if "firstspike bench" in cmdline.replace("\0", " "):
            roles[int(entry)] = "bench"
        ppid = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")), 0)
        parents[int(entry)] = ppid
    for pid, ppid in parents.items():
        if roles.get(ppid) == "bench" and pid not in roles:
            roles[pid] = "generator"
    return roles


def thread_times(pid: int, role: str) -> dict[str, list[int]]:
    """{"role/pid/tid": [ns on a core, ns waiting for one]} for every thread of `pid`."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        schedstat = _read(f"/proc/{pid}/task/{tid}/schedstat")
        if schedstat:
            on_cpu, waiting, _ = schedstat.split()
            out[f"{role}/{pid}/{tid}"] = [int(on_cpu), int(waiting)]
    return out


def record(server_pid: int, out_path: str, seconds: float | None = None) -> int:
    """Poll until the server exits (or `seconds` pass); one JSON line per poll. Returns the poll count."""
    began = time.time()
    roles = find_processes(server_pid)
    scanned = began
    polls = 0
    with open(out_path, "w") as out:
        out.write(json.dumps({"clock_ticks_per_s": os.sysconf("SC_CLK_TCK"), "cpus": os.cpu_count(),
                              "server_pid": server_pid}) + "\n")
        while os.path.exists(f"/proc/{server_pid}"):
            now = time.time()
            if seconds is not None and now - began > seconds:
                break
            if now - scanned > RESCAN_S:
                roles, scanned = find_processes(server_pid), now
            threads: dict[str, list[int]] = {}
            for pid, role in roles.items():
                threads.update(thread_times(pid, role))
            out.write(json.dumps({"t": round(now, 4), "cpu": host_ticks(), "threads": threads}) + "\n")
            polls += 1
            time.sleep(POLL_S)
    return polls


# --- report -----------------------------------------------------------------------------------------

@dataclass
class Trace:
    ticks_per_s: int
    cpus: int
    polls: list[dict]  # each: t (s since the bench's start), cpu, threads

    @classmethod
    def load(cls, path: str, t0: float) -> "Trace":
        with open(path) as f:
            head = json.loads(f.readline())
            polls = []
            for line in f:
                poll = json.loads(line)
                poll["t"] -= t0
                polls.append(poll)
        return cls(head["clock_ticks_per_s"], head["cpus"], polls)

    def busy_threads(self, min_s: float = 1.0) -> list[str]:
        """Threads that spent at least `min_s` on a core over the trace, servers first."""
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for poll in self.polls:
            for key, (on_cpu, _) in poll["threads"].items():
                first.setdefault(key, on_cpu)
                last[key] = on_cpu
        busy = [k for k in last if (last[k] - first[k]) / 1e9 >= min_s]
        order = {"server": 0, "bench": 1, "generator": 2}
        return sorted(busy, key=lambda k: (order.get(k.split("/")[0], 3), int(k.split("/")[1]), int(k.split("/")[2])))

    def windows(self, start: float, end: float, width: float) -> Iterator[tuple[float, float, dict, dict]]:
        """(t, dt, host deltas in ticks, thread deltas in ns) between the first polls of each window."""
        edges = [p for p in self.polls if start <= p["t"] <= end]
        marks = []
        for poll in edges:
            if not marks or int(poll["t"] // width) != int(marks[-1]["t"] // width):
                marks.append(poll)
        for a, b in zip(marks, marks[1:]):
            host = {name: b["cpu"][i] - a["cpu"][i] for i, name in enumerate(STAT_FIELDS)}
            threads = {k: [b["threads"][k][0] - v[0], b["threads"][k][1] - v[1]]
                       for k, v in a["threads"].items() if k in b["threads"]}
            yield a["t"], b["t"] - a["t"], host, threads

    def steal_polls(self, start: float, end: float) -> list[tuple[float, float]]:
        """(t, ms of steal since the previous poll) for every poll in [start, end] that saw any."""
        ms_per_tick = 1000.0 / self.ticks_per_s
        out = []
        for a, b in zip(self.polls, self.polls[1:]):
            steal = b["cpu"][7] - a["cpu"][7]
            if steal and start <= b["t"] <= end:
                out.append((round(b["t"], 2), steal * ms_per_tick))
        return out


def thread_label(key: str, trace_threads: list[str]) -> str:
    role, pid, tid = key.split("/")
    if role == "generator":
        index = sorted({int(k.split("/")[1]) for k in trace_threads if k.startswith("generator/")}).index(int(pid))
        role = f"gen{index + 1}"
    return f"{role} main" if pid == tid else f"{role} {tid}"


def format_windows(trace: Trace, start: float, end: float, width: float = 0.1) -> list[str]:
    threads = trace.busy_threads()
    labels = [thread_label(k, threads) for k in threads]
    lines = ["    t    host busy idle steal │ " + " │ ".join(f"{label:>15s}" for label in labels),
             "                (% of all CPUs) │ " + " │ ".join(f"{'on / waiting %':>15s}" for _ in labels)]
    capacity = trace.ticks_per_s * trace.cpus
    for t, dt, host, deltas in trace.windows(start, end, width):
        total = capacity * dt
        busy = sum(host[f] for f in ("user", "nice", "system", "irq", "softirq"))
        row = f"{t:7.2f} {100 * busy / total:9.0f} {100 * host['idle'] / total:4.0f} {100 * host['steal'] / total:5.0f} │ "
        cells = []
        for key in threads:
            if key in deltas:
                on_cpu, waiting = deltas[key]
                cells.append(f"{100 * on_cpu / 1e9 / dt:7.0f} / {100 * waiting / 1e9 / dt:4.0f}")
            else:
                cells.append(f"{'–':>15s}")
        lines.append(row + " │ ".join(cells))
    return lines


def report(trace_path: str, run_path: str, before_s: float = 1.5, after_s: float = 0.5) -> str:
    with open(run_path) as f:
        summary = json.load(f)
    run_end = summary.get("wall_s") or 1e9
    trace = Trace.load(trace_path, summary["started_at_unix"])
    steals = trace.steal_polls(0.0, run_end)
    out = [f"streams held: {summary.get('streams_held')} / {summary.get('streams')}",
           f"steal in the run: {sum(ms for _, ms in steals):.0f} ms in {len(steals)} polls"
           + (": " + ", ".join(f"{ms:.0f} ms at {t:.2f} s" for t, ms in steals) if steals else "")]
    for row in summary.get("fell_behind") or []:
        out.append("")
        out.append(f"fell behind at {row['t']:g} s: {row['sessions']} sessions, worst {row['worst_ms']} ms")
        out.extend(format_windows(trace, row["t"] - before_s, row["t"] + after_s))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="poll the server and the bench until the server exits")
    rec.add_argument("--server-pid", type=int, required=True)
    rec.add_argument("--out", required=True, help="trace file (JSON lines)")
    rec.add_argument("--seconds", type=float, help="stop after this long even if the server runs on")
    rep = sub.add_parser("report", help="the moments sessions fell behind, with the threads around them")
    rep.add_argument("--trace", required=True)
    rep.add_argument("--run", required=True, help="the bench's --json summary")
    args = parser.parse_args(argv)
    if args.command == "record":
        if not os.path.exists(f"/proc/{args.server_pid}"):
            parser.error(f"no process {args.server_pid}")
        polls = record(args.server_pid, args.out, args.seconds)
        print(f"sched_trace: {polls} polls -> {args.out}", file=sys.stderr)
    else:
        print(report(args.trace, args.run))
    return 0


if __name__ == "__main__":
    sys.exit(main())

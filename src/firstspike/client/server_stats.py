"""Sample the server's CPU and memory during a benchmark: from its process (psutil) or its /metrics.

psutil is exact but needs the server on this machine (`--server-pid`); /metrics works remotely, using
the standard `process_cpu_seconds_total` and `process_resident_memory_bytes` of prometheus-client.
Either way, where /metrics answers, the run also reads `firstspike_tick_seconds_sum`: the share of
each second the batching scheduler is busy says whether the model is what limits the server, which
CPU alone does not (a saturated model thread shows as one core of several).
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

# Seconds the batching schedulers spent in ticks: `parse_metrics` adds up the models, the server its workers.
SCHEDULER_SECONDS = "firstspike_tick_seconds_sum"


@dataclass
class StatSample:
    t: float  # seconds since the run's start
    cpu_seconds: float
    rss_bytes: float
    sessions_active: float | None = None
    scheduler_seconds: float | None = None  # firstspike_tick_seconds_sum, where /metrics answers


@dataclass
class ServerStats:
    source: str
    samples: list[StatSample] = field(default_factory=list)
    error: str | None = None

    def timeline(self) -> list[dict]:
        """Per interval: CPU % (of one core) and RSS in MiB."""
        rows = []
        for a, b in zip(self.samples, self.samples[1:]):
            dt = b.t - a.t
            if dt <= 0:
                continue
            busy = None
            if a.scheduler_seconds is not None and b.scheduler_seconds is not None:
                busy = round((b.scheduler_seconds - a.scheduler_seconds) / dt, 3)
            rows.append({
                "t": round(b.t, 2),
                "cpu_percent": round(100.0 * (b.cpu_seconds - a.cpu_seconds) / dt, 1),
                "rss_mib": round(b.rss_bytes / 2**20, 1),
                "sessions_active": b.sessions_active,
                "scheduler_busy": busy,
            })
        return rows


def parse_metrics(text: str) -> dict[str, float]:
    """Sum of every sample per metric name in Prometheus text format (labels ignored)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, rest = line.partition(" ")
        name = name_part.split("{", 1)[0]
        if "{" in name_part and "}" not in name_part:  # a label value with a space in it
            _, _, rest = line.partition("} ")
        try:
            values[name] = values.get(name, 0.0) + float(rest.split()[0])
        except (ValueError, IndexError):
            continue
    return values


def read_metrics(metrics_url: str, token: str | None) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(metrics_url, headers=headers), timeout=2) as response:
        return parse_metrics(response.read().decode("utf-8", "replace"))


class _Sampler:
    def __init__(self, read, source: str, t0: float, every_s: float) -> None:
        self.stats = ServerStats(source=source)
        self._read = read
        self._t0 = t0
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="server-stats", daemon=True)

    def _loop(self) -> None:
        while True:
            try:
                cpu, rss, active, scheduler = self._read()
                self.stats.samples.append(StatSample(time.perf_counter() - self._t0, cpu, rss, active, scheduler))
            except Exception as err:  # noqa: BLE001 - a vanished server ends sampling, not the benchmark
                self.stats.error = f"{type(err).__name__}: {err}"
            if self._stop.wait(self._every):
                return

    def start(self) -> "_Sampler":
        self._thread.start()
        return self

    def stop(self) -> ServerStats:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.stats


# How often the sampler looks for new server processes (`--workers N` restarts one that dies). Listing
# children scans all of /proc: 1.6 ms of CPU with 70 processes on the development machine, more on a
# busy host, taken from the cores under test at every sample.
FAMILY_REFRESH_S = 5.0


def process_sampler(pid: int, t0: float, every_s: float = 0.5,
                    scheduler: Callable[[], float | None] | None = None) -> _Sampler:
    """psutil's figures for the process and its children; `scheduler` reads the scheduler's seconds.

    A child that exits keeps the CPU seconds it was last seen with, so the total never runs backwards
    (which would show as a negative CPU share for that interval)."""
    import psutil

    proc = psutil.Process(pid)
    family: list = []
    last_cpu: dict[int, float] = {}
    listed_at = -float("inf")

    def read():
        nonlocal family, listed_at
        now = time.monotonic()
        if now - listed_at >= FAMILY_REFRESH_S:
            family, listed_at = [proc, *proc.children(recursive=True)], now
        rss = 0.0
        for p in family:
            try:
                with p.oneshot():
                    times = p.cpu_times()
                    last_cpu[p.pid] = times.user + times.system
                    rss += p.memory_info().rss
            except psutil.NoSuchProcess:
                listed_at = -float("inf")  # list again next time: a restarted worker replaces it
        return sum(last_cpu.values()), rss, None, scheduler() if scheduler is not None else None

    return _Sampler(read, f"process {pid} (psutil)", t0, every_s)


def scheduler_reader(metrics_url: str, token: str | None) -> Callable[[], float | None]:
    """Reads the schedulers' seconds from /metrics beside psutil; None for a sample it cannot get."""
    def read() -> float | None:
        try:
            return read_metrics(metrics_url, token).get(SCHEDULER_SECONDS)
        except (urllib.error.URLError, OSError, ValueError):
            return None
    return read


def metrics_sampler(metrics_url: str, token: str | None, t0: float, every_s: float = 0.5) -> _Sampler:
    def read():
        values = read_metrics(metrics_url, token)
        if "process_cpu_seconds_total" not in values:
            raise RuntimeError(f"{metrics_url} has no process_cpu_seconds_total")
        active = next((v for k, v in values.items() if k.endswith("sessions_active")), None)
        return (values["process_cpu_seconds_total"], values.get("process_resident_memory_bytes", 0.0), active,
                values.get(SCHEDULER_SECONDS))

    return _Sampler(read, metrics_url, t0, every_s)


def probe_metrics(metrics_url: str, token: str | None) -> tuple[str | None, dict[str, float]]:
    """(None when /metrics answers with process figures, otherwise why not; what it answered)."""
    try:
        values = read_metrics(metrics_url, token)
    except (urllib.error.URLError, OSError, ValueError) as err:
        return f"{metrics_url}: {err}", {}
    if "process_cpu_seconds_total" not in values:
        return f"{metrics_url} has no process_cpu_seconds_total", values
    return None, values


def listening_pid(port: int) -> int | None:
    """The local server listening on this TCP port, if psutil may see it (the server on this machine).

    Several processes listening on one port (`firstspike serve --workers N`) are reported as their
    common parent, whose children the sampler adds up.
    """
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    pids = {conn.pid for conn in connections
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid}
    if len(pids) <= 1:
        return next(iter(pids), None)
    try:
        parents = {psutil.Process(pid).ppid() for pid in pids}
    except psutil.NoSuchProcess:
        return min(pids)
    return parents.pop() if len(parents) == 1 else min(pids)

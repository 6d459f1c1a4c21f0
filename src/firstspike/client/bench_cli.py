"""`firstspike bench`: hold N real-time streams against a server and report what it sustained.

This is the tool the server's capacity targets are measured with: streams held at real time,
p50/p95/p99 decision latency, failures by close code, server CPU and memory, JSON and a PNG plot.
"""

from __future__ import annotations

import argparse

from firstspike.client.cli_common import (
    EXIT_FAILED_CHECK,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    add_connection_arguments,
    endpoint_ms,
    positive_float,
    positive_int,
    session_options,
)

SYNTHETIC_SECONDS = 4.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_arguments(parser)
    parser.add_argument("--streams", type=positive_int, default=100, help="concurrent real-time streams (default 100)")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds to open all streams, evenly (default 10)")
    parser.add_argument("--duration", type=positive_float, default=20.0,
                        help="seconds to hold full load after the ramp (default 20)")
    parser.add_argument("--procs", type=positive_int, help="generator processes (default: one per ~300 streams, ≤ cores)")
    parser.add_argument("--chunk-ms", type=positive_float, default=100.0, help="audio per message (default 100)")
    parser.add_argument("--audio", metavar="FILE|DIR|MANIFEST",
                        help=f"clips each stream plays back to back (default: {SYNTHETIC_SECONDS:g} s of quiet noise)")
    parser.add_argument("--noise-seconds", type=positive_float, default=SYNTHETIC_SECONDS,
                        help=f"length of the synthetic noise clip when no --audio is given: one session per clip "
                             f"(default {SYNTHETIC_SECONDS:g})")
    parser.add_argument("--max-clips", type=positive_int, default=200, help="use at most this many clips (default 200)")
    parser.add_argument("--tolerance-ms", type=positive_float,
                        help="a stream is held while send lag and decision latency stay within this (default: --chunk-ms)")
    parser.add_argument("--endpoint-ms", type=float, default=0.0, metavar="MS",
                        help="ask the server to run its end-of-speech detector on every stream, ending a session "
                             "once speech is followed by MS of quiet (default 0: off), to measure what it costs")
    parser.add_argument("--server-pid", type=int, help="sample this server process with psutil instead of /metrics")
    parser.add_argument("--metrics-url", help="Prometheus endpoint (default: http://HOST:PORT/metrics of --url)")
    parser.add_argument("--json", metavar="OUT.json", help="write the full summary here")
    parser.add_argument("--plot", metavar="OUT.png", help="write latency against streams here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console

    from firstspike.client.audio_files import AudioInputError

    err = Console(stderr=True, soft_wrap=True)
    try:
        options = session_options(args, ping=False)
        options.endpoint_ms = endpoint_ms(args)
        if args.ramp < 0:
            raise ValueError("--ramp must be zero or more")
        clips = _load_clips(args)
    except (ValueError, AudioInputError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        return EXIT_USAGE
    from firstspike.client.load import default_procs

    procs = min(args.procs or default_procs(args.streams), args.streams)
    tolerance = args.tolerance_ms or args.chunk_ms
    from firstspike.machine import machine_summary

    machine = machine_summary()  # before the load: its load average is the machine's own
    summary = _run_bench(args, options, clips, procs, tolerance, err)
    summary["config"] = {
        "url": args.url, "streams": args.streams, "ramp_s": args.ramp, "duration_s": args.duration, "procs": procs,
        "chunk_ms": args.chunk_ms, "audio": args.audio or f"synthetic noise {args.noise_seconds:g} s",
        "clips": len(clips), "endpoint_ms": options.endpoint_ms, "command": " ".join(["firstspike", *sys.argv[1:]]),
        "machine": machine,
    }
    _print_summary(Console(file=sys.stdout, soft_wrap=True), summary)
    if args.json:
        import json

        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=1)
    if args.plot:
        from firstspike.client.bench_plot import plot_bench

        plot_bench(summary, args.plot)
    if summary["interrupted"]:
        return EXIT_INTERRUPTED
    sessions = summary["sessions"]
    if sessions["ok"] == 0 and sessions["failed"] and _all_unavailable(summary["failures_by_key"]):
        err.print(f"[red]error:[/red] the server at {args.url} is unavailable ({', '.join(summary['failures_by_key'])})")
        return EXIT_UNAVAILABLE
    if summary["streams_not_held"] or sessions["failed"] or summary["worker_errors"]:
        return EXIT_FAILED_CHECK
    return EXIT_OK


def _all_unavailable(failures: dict) -> bool:
    return all(k in ("refused", "unreachable", "timeout") or k.startswith(("http 502", "http 503", "http 504"))
               for k in failures)


def _local_server_pid(url: str) -> int | None:
    """When /metrics has no process figures, watch the server's process directly if it runs here."""
    from urllib.parse import urlsplit

    from firstspike.client.server_stats import listening_pid

    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    return listening_pid(parts.port or (443 if parts.scheme == "wss" else 80))


def _load_clips(args) -> list[tuple[int, int, bytes]]:
    from firstspike.client.audio_files import discover, load_clip

    if args.audio is None:
        import numpy as np

        rng = np.random.default_rng(0)
        noise = rng.normal(0.0, 0.01, int(16000 * args.noise_seconds))
        return [(16000, 1, (noise * 32767).clip(-32768, 32767).astype("<i2").tobytes())]
    clips = []
    for item in discover(args.audio)[: args.max_clips]:
        clip = load_clip(item.path)
        clips.append((clip.sample_rate, clip.channels, clip.pcm))
    return clips


def _run_bench(args, options, clips, procs: int, tolerance: float, err) -> dict:
    import multiprocessing as mp
    import queue
    import resource
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from firstspike.client.bench_summary import summarise
    from firstspike.client.connection import http_base
    from firstspike.client.load import plan_workers, run_worker
    from firstspike.client.server_stats import (
        SCHEDULER_SECONDS, metrics_sampler, probe_metrics, process_sampler, scheduler_reader,
    )

    ctx = mp.get_context("spawn")
    stop_event = ctx.Event()
    counters = ctx.Array("q", 3 * procs, lock=False)
    results = ctx.Queue()
    start_delay = 1.0 + 0.5 * procs  # let spawned workers import before slot 0 is due
    t0_wall = time.time() + start_delay
    t0_perf = time.perf_counter() + start_delay
    plans = plan_workers(args.streams, procs, t0_wall, args.ramp, args.duration, args.chunk_ms, clips, options)
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)

    sampler = None
    metrics_url = args.metrics_url or f"{http_base(args.url)}/metrics"
    problem, answered = probe_metrics(metrics_url, args.token)
    # Read beside psutil only from a server that exports it (another server, or none, has no such figure).
    scheduler = scheduler_reader(metrics_url, args.token) if SCHEDULER_SECONDS in answered else None
    if args.server_pid is not None:
        try:
            sampler = process_sampler(args.server_pid, t0_perf, scheduler=scheduler)
        except Exception as exc:  # noqa: BLE001 - psutil.NoSuchProcess and friends
            err.print(f"[yellow]warning:[/yellow] cannot watch process {args.server_pid}: {exc}")
    else:
        local_pid = _local_server_pid(args.url) if problem is not None else None
        if problem is None:
            sampler = metrics_sampler(metrics_url, args.token, t0_perf)
        elif local_pid is not None:
            sampler = process_sampler(local_pid, t0_perf, scheduler=scheduler)
        else:
            err.print(f"[yellow]warning:[/yellow] no server CPU/memory: {problem} (try --server-pid)")
    if sampler is not None:
        sampler.start()

    workers = [ctx.Process(target=run_worker, args=(plan, stop_event, counters, results), daemon=True) for plan in plans]
    for w in workers:
        w.start()
    total_s = start_delay + args.ramp + args.duration
    interrupted = False
    collected: dict[int, tuple] = {}
    progress = Progress(
        TextColumn("[bold]bench"), BarColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
        console=err, transient=False, disable=args.quiet,
    )
    started = time.perf_counter()
    with progress:
        task = progress.add_task("bench", total=total_s, status="starting workers")
        while len(collected) < len(workers):
            try:
                worker, records, timeline, error = results.get(timeout=0.25)
                collected[worker] = (records, timeline, error)
            except queue.Empty:
                pass
            except KeyboardInterrupt:
                interrupted = True
                stop_event.set()
                continue
            if not any(w.is_alive() for w in workers) and results.empty() and len(collected) < len(workers):
                break
            elapsed = time.perf_counter() - started
            if elapsed > total_s + args.timeout + 30 and not stop_event.is_set():
                stop_event.set()
            active = sum(counters[3 * i] for i in range(len(plans)))
            decisions = sum(counters[3 * i + 1] for i in range(len(plans)))
            failures = sum(counters[3 * i + 2] for i in range(len(plans)))
            progress.update(task, completed=min(elapsed, total_s),
                            status=f"open {active:5d}  decisions {decisions:6d}  failures {failures:4d}")
        progress.update(task, completed=total_s)
    for w in workers:
        w.join(timeout=10)
    wall = time.perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    gen_cpu = (usage_after.ru_utime + usage_after.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime)
    server = sampler.stop() if sampler is not None else None
    records = [r for rec, _, _ in collected.values() for r in rec]
    timelines = [tl for _, tl, _ in collected.values()]
    errors = [e for _, _, e in collected.values() if e]
    errors += [f"worker {i} exited with {w.exitcode} and sent nothing" for i, w in enumerate(workers) if i not in collected]
    summary = summarise(records, timelines, args.streams, args.ramp, tolerance, server,
                        round(100.0 * gen_cpu / max(wall, 1e-9), 1), wall, interrupted, errors, args.chunk_ms)
    summary["started_at_unix"] = round(t0_wall, 3)  # time 0 of every timeline, to line up with server logs
    return summary


def _print_summary(out, summary: dict) -> None:
    from rich.table import Table

    from firstspike.client.report import pct_row

    s = summary["sessions"]
    head = Table(title="bench summary" + (" (interrupted: partial)" if summary["interrupted"] else ""), show_header=False)
    head.add_column(style="dim")
    head.add_column(justify="right")
    head.add_row("streams held at real time", f"{summary['streams_held']} / {summary['streams']}"
                 f"  (tolerance {summary['held_tolerance_ms']:g} ms)")
    head.add_row("peak open streams", str(summary["peak_active_streams"]))
    head.add_row("sessions", f"{s['finished']} finished: {s['early']} early, {s['at_stop']} at stop, {s['failed']} failed"
                 f"; {s['cut_at_end']} cut at the end")
    head.add_row("sessions decided in time", f"{s['in_time']} of {s['ok']} decisions"
                 f" (no chunk or decision over {summary['held_tolerance_ms']:g} ms late)")
    head.add_row("failures", ", ".join(f"{k}: {v}" for k, v in summary["failures_by_key"].items()) or "0")
    head.add_row("generator CPU", f"{summary['generator_cpu_percent']}% of one core")
    server = summary.get("server")
    if server and server.get("timeline"):
        head.add_row("server CPU", f"{server['cpu_percent_mean_at_full_load']}% mean at full load, "
                     f"{server['cpu_percent_peak']}% peak (of one core)")
        if server.get("cpu_us_per_message") is not None:
            head.add_row("server CPU per message", f"{server['cpu_us_per_message']:g} µs per offered message"
                         " (an underestimate if the server fell behind)")
        busy = server.get("scheduler_busy_mean_at_full_load")
        if busy is not None:
            head.add_row("model scheduler busy", f"{busy:.0%} of each second at full load"
                         " (near 100 % a worker: the model limits the server)")
        per = server.get("rss_kib_per_stream")
        head.add_row("server memory", f"{server['rss_mib_before']} → {server['rss_mib_peak']} MiB"
                     + (f" ({per} KiB per stream)" if per is not None else ""))
    elif server:
        head.add_row("server stats", server.get("error") or "no samples")
    behind = summary.get("fell_behind") or []
    if behind:
        head.add_row("fell behind at", _describe_fell_behind(behind))
    for e in summary["worker_errors"]:
        head.add_row("worker error", e)
    machine = summary.get("config", {}).get("machine")
    if machine:
        from firstspike.machine import describe_machine

        head.add_row("machine", describe_machine(machine) + " before the run")
    out.print(head)
    table = Table(title="latency")
    for col in ("", "n", "p50", "p90", "p95", "p99", "max"):
        table.add_column(col, justify="right" if col else "left")
    table.add_row(*pct_row("decision latency (early)", summary["decision_latency_ms"]))
    table.add_row(*pct_row("decision latency (at stop)", summary["stop_latency_ms"]))
    table.add_row(*pct_row("server processing", summary["processing_ms"]))
    table.add_row(*pct_row("send lag (per session max)", summary["max_send_lag_ms"]))
    out.print(table)


def _describe_fell_behind(rows: list[dict], most: int = 4) -> str:
    """The moments that cost the most streams, in time order: "24.0 s: 31 sessions (worst 160 ms)"."""
    worst = sorted(sorted(rows, key=lambda r: -r["sessions"])[:most], key=lambda r: r["t"])
    parts = [f"{r['t']:g} s: {r['sessions']} session{'s' * (r['sessions'] != 1)} (worst {r['worst_ms']:g} ms)"
             for r in worst]
    if len(rows) > most:
        parts.append(f"and {len(rows) - most} more half-seconds")
    return "; ".join(parts)

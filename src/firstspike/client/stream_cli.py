"""`firstspike stream FILE|DIR|MANIFEST`: stream audio files to a server and report latency.

One file prints a latency report; many files print a summary (accuracy, false fires on filler clips,
decision-time and latency percentiles). Streaming is paced in real time unless --fast.
"""

from __future__ import annotations

import argparse

from firstspike.client.cli_common import (
    EXIT_FAILED_CHECK,
    EXIT_FOR_OUTCOME,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SERVER_ERROR,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    add_connection_arguments,
    positive_float,
    positive_int,
    session_options,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="FILE|DIR|MANIFEST",
                        help="a .wav/.flac file, a folder (labels from labels.csv/manifest.csv or parent folder names), "
                             "or a manifest .csv with path,label columns")
    add_connection_arguments(parser)
    parser.add_argument("--chunk-ms", type=positive_float, default=100.0, help="audio per binary message (default 100)")
    parser.add_argument("--fast", action="store_true", help="send as fast as possible instead of in real time")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--concurrency", type=positive_int, default=8, help="files streamed at once (default 8)")
    parser.add_argument("--limit", type=positive_int, help="stream at most this many files")
    parser.add_argument("--split", help="only rows of this split (train/val/test) of a corpus manifest")
    parser.add_argument("--expect", metavar="LABEL", help="single file: exit 1 unless the decision is LABEL")
    parser.add_argument("--min-accuracy", type=float, metavar="FRACTION",
                        help="many files: exit 1 if accuracy against the labels is below this (0–1)")
    parser.add_argument("--details", metavar="FILE.jsonl", help="many files: write every file's report, one JSON per line")


def run(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console

    from firstspike.client.audio_files import AudioInputError, discover

    err = Console(stderr=True, soft_wrap=True)
    try:
        options = session_options(args, ping=True)
        items = discover(args.target, split=args.split)
    except (ValueError, AudioInputError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        return EXIT_USAGE
    if args.limit:
        items = items[: args.limit]
    out = Console(file=sys.stdout, soft_wrap=True)
    if len(items) == 1 and not _is_batch_target(args.target):
        return _stream_one(args, options, items[0].path, out, err)
    return _stream_many(args, options, items, out, err)


def _is_batch_target(target: str) -> bool:
    from pathlib import Path

    return Path(target).is_dir() or target.lower().endswith(".csv")


def _stream_one(args, options, path, out, err) -> int:
    import asyncio
    import json

    from firstspike.client.audio_files import AudioInputError, load_clip
    from firstspike.client.connection import run_session
    from firstspike.client.report import print_session, session_report

    try:
        clip = load_clip(path)
    except AudioInputError as exc:
        err.print(f"[red]error:[/red] {exc}")
        return EXIT_USAGE
    try:
        res = asyncio.run(
            run_session(options, clip.sample_rate, clip.channels, clip.chunks(args.chunk_ms), paced=not args.fast)
        )
    except KeyboardInterrupt:
        err.print("interrupted before a decision")
        return EXIT_INTERRUPTED
    report = session_report(res, clip, args.chunk_ms, paced=not args.fast)
    if res.ready is None and not args.json:
        err.print(f"[red]error:[/red] {res.failure} ({args.url})")
        return EXIT_FOR_OUTCOME[res.outcome]
    if args.json:
        out.print_json(json.dumps(report)) if out.is_terminal else print(json.dumps(report))
    else:
        print_session(out, report)
    code = EXIT_FOR_OUTCOME[res.outcome]
    if code != EXIT_OK:
        if args.json:
            err.print(f"[red]error:[/red] {res.failure}")
        return code
    if args.expect is not None and (res.decision or {}).get("label") != args.expect:
        err.print(f"expected {args.expect!r}, got {(res.decision or {}).get('label')!r}")
        return EXIT_FAILED_CHECK
    return EXIT_OK


def _stream_many(args, options, items, out, err) -> int:
    import asyncio
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from firstspike.client.connection import UNAVAILABLE
    from firstspike.client.report import batch_summary, print_summary, score

    reports: list[dict] = []
    labels: list[str] = []
    progress = Progress(
        TextColumn("[bold]streaming"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(), console=err, transient=False,
    )
    interrupted = False
    with progress:
        task = progress.add_task("stream", total=len(items), status="")
        try:
            asyncio.run(_run_batch(args, options, items, reports, labels, progress, task))
        except KeyboardInterrupt:
            interrupted = True
    if reports and not interrupted and all(r["outcome"] == UNAVAILABLE for r in reports):
        err.print(f"[red]error:[/red] {reports[0]['error']} ({args.url})")
        return EXIT_UNAVAILABLE
    scored = [score(r, labels) for r in reports]
    summary = batch_summary(scored, total=len(items), interrupted=interrupted)
    if args.details:
        with open(args.details, "w") as handle:
            for r in reports:
                handle.write(json.dumps(r) + "\n")
    if args.json:
        model = next((r["model"] for r in reports if r.get("model")), None)
        print(json.dumps({"model": model, "labels": labels, "summary": summary}))
    else:
        print_summary(out, summary)
    if interrupted:
        return EXIT_INTERRUPTED
    failures = [r for r in reports if r["outcome"] != "ok"]
    for message in dict.fromkeys(f"{r['file']}: {r['error']}" for r in failures[:5]):
        err.print(f"[red]failed:[/red] {message}")
    server_failures = [r for r in failures if r["outcome"] != "input"]
    if server_failures:
        if not summary["completed"] and any(r["outcome"] == UNAVAILABLE for r in server_failures):
            return EXIT_UNAVAILABLE
        return EXIT_SERVER_ERROR
    if failures:
        return EXIT_USAGE
    if args.min_accuracy is not None and (summary["accuracy"] is None or summary["accuracy"] < args.min_accuracy):
        err.print(f"accuracy {summary['accuracy']} is below --min-accuracy {args.min_accuracy}")
        return EXIT_FAILED_CHECK
    return EXIT_OK


async def _run_batch(args, options, items, reports, labels, progress, task) -> None:
    """Stream every file with at most --concurrency sessions open; stop early if the server is gone."""
    import asyncio

    from firstspike.client.audio_files import AudioInputError, load_clip
    from firstspike.client.connection import UNAVAILABLE, SessionResult, run_session
    from firstspike.client.report import session_report

    queue: asyncio.Queue = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    server_gone = asyncio.Event()
    counts = {"ok": 0, "failed": 0}

    async def worker() -> None:
        while not server_gone.is_set():
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                clip = load_clip(item.path, item.label)
            except AudioInputError as exc:
                res = SessionResult(sample_rate=0, channels=0, outcome="input", failure=str(exc), failure_key="unreadable file")
                report = session_report(res, None, args.chunk_ms, paced=not args.fast)
                report.update(file=str(item.path), label=item.label)
            else:
                res = await run_session(
                    options, clip.sample_rate, clip.channels, clip.chunks(args.chunk_ms), paced=not args.fast
                )
                report = session_report(res, clip, args.chunk_ms, paced=not args.fast)
                if res.ready and not labels:
                    labels.extend(res.ready.get("labels", []))
                if res.outcome == UNAVAILABLE and res.failure_key in ("refused", "unreachable"):
                    server_gone.set()
            reports.append(report)
            counts["ok" if report["outcome"] == "ok" else "failed"] += 1
            progress.update(task, advance=1, status=f"ok {counts['ok']}  failed {counts['failed']}")

    await asyncio.gather(*(worker() for _ in range(min(args.concurrency, len(items)))))

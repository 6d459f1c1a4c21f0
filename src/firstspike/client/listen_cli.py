"""`firstspike listen`: stream the microphone, show level and partial scores, print each decision.

After a decision the server closes the session; the command opens a new one and listens again
(`--once` stops after the first). Each session asks the server to end it once speech has been followed
by `--endpoint-ms` of quiet (`firstspike/endpointing.py`), so a keyword that never crosses θ still gets
an answer. sounddevice is imported only when the command runs.
"""

from __future__ import annotations

import argparse

from firstspike.client.cli_common import (
    EXIT_FOR_OUTCOME,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_connection_arguments,
    endpoint_ms,
    positive_float,
    session_options,
)
from firstspike.protocol import DEFAULT_ENDPOINT_MS, ENDPOINT_MIN_SCORE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_arguments(parser)
    parser.add_argument("--list-devices", action="store_true", help="list audio input devices and exit")
    parser.add_argument("--device", help="input device: index or part of its name (default: the system default)")
    parser.add_argument("--rate", type=int, help="capture rate in Hz (default: the device's own, if protocol v1 has it)")
    parser.add_argument("--chunk-ms", type=positive_float, default=100.0, help="audio per message (default 100)")
    parser.add_argument("--once", action="store_true", help="stop after the first decision")
    parser.add_argument("--seconds", type=positive_float,
                        help="end each session after this much audio with 'stop' (a non-early decision)")
    parser.add_argument("--endpoint-ms", type=float, default=DEFAULT_ENDPOINT_MS, metavar="MS",
                        help="the server ends each session once speech is followed by this much quiet, so a keyword "
                             f"that never crosses θ still gets the model's best answer (default {DEFAULT_ENDPOINT_MS}; "
                             "0 turns it off: only a keyword crossing θ ends a session; docs/client.md has the trade-off)")
    parser.add_argument("--endpoint-min-score", type=float, default=ENDPOINT_MIN_SCORE, metavar="P",
                        help="report an answer at the end of speech as a command only if its score reaches P "
                             f"(default {ENDPOINT_MIN_SCORE}); below it, or a filler, it is 'no command'")
    parser.add_argument("--json", action="store_true", help="print each decision as one JSON line; no live display")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from rich.console import Console

    from firstspike.client.microphone import Microphone, MicrophoneError, input_devices, pick_rate, resolve_device

    err = Console(stderr=True, soft_wrap=True)
    try:
        if args.list_devices:
            return _list_devices(input_devices(), Console(file=sys.stdout))
        if not 0.0 <= args.endpoint_min_score <= 1.0:
            raise ValueError(f"--endpoint-min-score must lie in [0, 1], got {args.endpoint_min_score}")
        options = session_options(args, partials=True, ping=False)
        options.endpoint_ms = endpoint_ms(args)
        device = resolve_device(args.device)
        rate = pick_rate(device, args.rate)
        mic = Microphone(device, rate, chunk_frames=max(1, round(rate * args.chunk_ms / 1000)))
    except (MicrophoneError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        return EXIT_USAGE
    if not args.json:
        err.print(f"listening on [bold]{device.index}: {device.name}[/bold] at {rate} Hz → {args.url}  (Ctrl-C to stop)")
    decisions: list[dict] = []
    code = EXIT_OK
    out = Console(file=sys.stdout, soft_wrap=True)
    try:
        with mic:
            code = asyncio.run(_listen(args, options, mic, decisions, out, err))
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except RuntimeError as exc:  # the capture thread failed mid-stream
        err.print(f"[red]error:[/red] {exc}")
        code = EXIT_USAGE
    if not args.json:
        err.print(f"{len(decisions)} decision(s)" + (" — interrupted" if code == EXIT_INTERRUPTED else ""))
    return code


def _list_devices(devices, out) -> int:
    from rich.table import Table

    if not devices:
        out.print("no audio input devices found")
        return EXIT_USAGE
    table = Table(title="audio input devices")
    for col in ("index", "name", "host API", "inputs", "default rate", "default"):
        table.add_column(col)
    for d in devices:
        table.add_row(str(d.index), d.name, d.host_api, str(d.max_input_channels), f"{d.default_samplerate:g}",
                      "*" if d.is_default else "")
    out.print(table)
    return EXIT_OK


class _LiveView:
    """Level meter and the latest partial scores, redrawn in place on a terminal."""

    def __init__(self, console) -> None:
        self.console = console
        self.level_db = -120.0
        self.scores: dict[str, float] = {}
        self.audio_ms = 0.0

    def on_chunk(self, chunk: bytes) -> None:
        import numpy as np

        samples = np.frombuffer(chunk, dtype="<i2").astype(np.float32) / 32768.0
        rms = float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
        self.level_db = 20.0 * np.log10(max(rms, 1e-6))

    def on_scores(self, message: dict) -> None:
        self.scores = dict(message.get("scores") or {})
        self.audio_ms = float(message.get("audio_ms", 0.0))

    def __rich__(self):
        from rich.text import Text

        width = 30
        filled = int(round(width * min(1.0, max(0.0, (self.level_db + 60.0) / 60.0))))
        colour = "red" if self.level_db > -3 else "green"
        line = Text("level ")
        line.append("█" * filled, style=colour)
        line.append("·" * (width - filled), style="dim")
        line.append(f" {self.level_db:6.1f} dBFS   ")
        top = sorted(self.scores.items(), key=lambda kv: kv[1], reverse=True)[:4]
        for label, prob in top:
            line.append(f"{label} ", style="bold" if prob == top[0][1] else "")
            line.append(f"{prob:.2f}  ")
        if self.scores:
            line.append(f"@{self.audio_ms:.0f} ms", style="dim")
        return line


async def _listen(args, options, mic, decisions: list[dict], out, err) -> int:
    import asyncio
    import json
    import queue

    from rich.live import Live

    from firstspike.client.connection import run_session
    from firstspike.endpointing import late_command

    max_frames = None if args.seconds is None else round(args.seconds * mic.sample_rate)

    async def captured():
        sent = 0
        while max_frames is None or sent < max_frames:
            if mic.error is not None:
                raise RuntimeError(f"audio capture failed: {mic.error}")
            try:
                chunk = await asyncio.to_thread(mic.chunks.get, True, 0.5)
            except queue.Empty:
                continue
            if max_frames is not None:
                chunk = chunk[: 2 * (max_frames - sent)]
            sent += len(chunk) // 2
            yield chunk

    live_display = not args.json and err.is_terminal
    view = _LiveView(err)
    live = Live(view, console=err, refresh_per_second=10, transient=True) if live_display else None
    while True:
        mic.drain()
        if live:
            live.start()
        try:
            res = await run_session(
                options, mic.sample_rate, 1, captured(), paced=True,
                on_scores=view.on_scores, on_chunk=view.on_chunk,
            )
        finally:
            if live:
                live.stop()
        if res.decision is None:
            err.print(f"[red]error:[/red] {res.failure} ({options.url})")
            return EXIT_FOR_OUTCOME.get(res.outcome, EXIT_USAGE)
        record = {
            "label": res.decision.get("label"),
            "score": res.decision.get("score"),
            "early": res.decision.get("early"),
            "audio_ms": res.decision.get("audio_ms"),
            "decision_latency_ms": None if res.decision_latency_ms is None else round(res.decision_latency_ms, 3),
            "processing_ms": res.decision.get("processing_ms"),
            "model": (res.ready or {}).get("model"),
            "scores_received": res.scores_received,
            "close_code": res.close_code,
            "endpointed": res.endpointed,
        }
        firing = (res.ready or {}).get("firing_labels", ())
        record["command"] = (late_command(record["label"], record["score"], args.endpoint_min_score, firing)
                             if res.endpointed else record["label"])
        decisions.append(record)
        if args.json:
            print(json.dumps(record), flush=True)
        else:
            latency = record["decision_latency_ms"]
            heard = (f"[bold green]{record['label']}[/bold green]" if record["command"] is not None
                     else f"[yellow]no command[/yellow] (best guess {record['label']})")
            how = "early" if record["early"] else ("speech ended" if record["endpointed"] else "at stop")
            out.print(
                f"{heard} ({record['score']:.2f}, {how}) at {record['audio_ms']} ms of audio — "
                f"latency {latency if latency is not None else '–'} ms, server {record['processing_ms']} ms"
            )
        if args.once:
            return EXIT_OK

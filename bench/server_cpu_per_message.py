"""CPU cost of one audio message, and of one session, in `firstspike serve`, split by server thread.

Starts a server, opens N streams that each send M chunks of 100 ms (16 kHz s16 mono) a little faster
than real time, and reads every server thread's CPU time with psutil before and after. The event-loop
thread's figure is what bounds how many streams one process can hold (it is a single thread); the
model thread's figure divided by 10 is the model's cost per 10 ms frame at the batch sizes reached.

With `--sessions S` each stream opens S sessions one after another (handshake, start, ready, audio,
stop, decision, close). Few chunks and many sessions measure what a session costs besides its audio:
the load generator's clips end every few seconds, so at 1000 streams the server opens and closes
well over a hundred sessions a second.

    .venv/bin/python bench/server_cpu_per_message.py --streams 50 --chunks 200
    .venv/bin/python bench/server_cpu_per_message.py --streams 8 --chunks 1 --gap-ms 0 --sessions 250
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import websockets

CHUNK = b"\x01\x00" * 1600  # 100 ms at 16 kHz, s16 mono


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _streams(url: str, sessions: int, chunks: int, gap_s: float) -> None:
    for _ in range(sessions):
        await _stream(url, chunks, gap_s)


async def _stream(url: str, chunks: int, gap_s: float) -> None:
    async with websockets.connect(url, compression=None) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": 16000, "encoding": "pcm_s16le", "threshold": 1.0}))
        await ws.recv()
        for _ in range(chunks):
            await ws.send(CHUNK)
            await asyncio.sleep(gap_s)
        await ws.send(json.dumps({"type": "stop"}))
        try:
            while True:
                await ws.recv()
        except websockets.ConnectionClosed:
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--chunks", type=int, default=200, help="chunks per session")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="pause between a stream's chunks")
    parser.add_argument("--sessions", type=int, default=1, help="sessions each stream opens, one after another")
    parser.add_argument("--model", help="serve this step model instead of the bundled one")
    args = parser.parse_args()
    port = _free_port()
    firstspike = str(Path(sys.executable).with_name("firstspike"))
    server = subprocess.Popen([firstspike, "serve", "--port", str(port), "--log-level", "warning",
                               "--max-stream-seconds", "100000"] + (["--model", args.model] if args.model else []))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    print("server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.1)
        proc = psutil.Process(server.pid)

        def cpu_by_thread() -> dict[int, float]:
            return {t.id: t.user_time + t.system_time for t in proc.threads()}

        before, began = cpu_by_thread(), time.perf_counter()
        url = f"ws://127.0.0.1:{port}/v1/stream"

        async def run_all():
            await asyncio.gather(*[_streams(url, args.sessions, args.chunks, args.gap_ms / 1000)
                                   for _ in range(args.streams)])

        asyncio.run(run_all())
        after, wall = cpu_by_thread(), time.perf_counter() - began
        sessions = args.streams * args.sessions
        messages = sessions * args.chunks
        print(f"{messages} messages of 100 ms in {sessions} sessions from {args.streams} streams in {wall:.1f} s")
        used_by = {tid: seconds - before.get(tid, 0.0) for tid, seconds in after.items()}
        total = sum(used_by.values())
        for tid, used in sorted(used_by.items()):
            # The event loop always; other threads when they did a real share of the work (a short run
            # on a fast machine may give every thread only a few ms).
            if tid == server.pid or used > 0.01 * total:
                role = "event loop" if tid == server.pid else "other (model worker)"
                print(f"  thread {tid} ({role}): {used / messages * 1e6:.1f} µs CPU per message, "
                      f"{used / sessions * 1e6:.0f} µs per session, {used / wall * 100:.0f}% of a core")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())

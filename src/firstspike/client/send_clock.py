"""One timer for all the paced streams of a load-generator process.

A stream that sleeps until each chunk is due costs a timer, a task switch and an async-generator
step per 100 ms chunk: about 10 µs of CPU per wake-up on this machine (uvloop), a tenth of a core
at 1000 streams, taken from the same two cores the server under test runs on. A `SendClock` keeps
every stream's next chunk in one heap and, every `period_s`, writes all chunks that have come due,
straight from its own task. A stream's task sleeps from its first chunk to its last.

The clock only sends while that is cheap and safe (`connection._send_now`); when a connection is
closed, finished, or has a backed-up socket, it hands the rest of the clip back to the stream's
own loop, which waits for the socket like any other send.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Playback:
    due: float  # perf_counter at which `chunks[next]` is due
    chunks: list[bytes]
    next: int
    t0: float  # when chunk 0 was due: chunk k is due at t0 + starts[k]
    starts: list[float]  # each chunk's start offset in seconds of audio
    send: Callable[[int, float], bool]  # (chunk index, lag ms) → sent?
    finished: asyncio.Event
    done: asyncio.Future


class SendClock:
    def __init__(self, period_s: float = 0.005):
        self.period_s = period_s
        self._heap: list[tuple[float, int, _Playback]] = []  # (due, tie-breaker, playback)
        self._order = itertools.count()
        self._task: asyncio.Task | None = None

    async def play(
        self, chunks: list[bytes], starts: list[float], send: Callable[[int, float], bool], finished: asyncio.Event,
    ) -> tuple[int, float]:
        """Send `chunks` in real time from now; returns (chunks sent, t0) when done or handed back.

        `starts[k]` is chunk k's start in seconds of audio; `send(k, lag_ms)` writes chunk k and says
        whether it could (False hands chunk k and the rest back). `finished` stops the playback.
        """
        if not chunks:
            return 0, time.perf_counter()
        t0 = time.perf_counter()
        playback = _Playback(t0, chunks, 0, t0, starts, send, finished, asyncio.get_running_loop().create_future())
        self._send_due(playback, t0)  # the first chunk goes now, as an unpaced loop would send it
        if not playback.done.done():
            heapq.heappush(self._heap, (playback.due, next(self._order), playback))
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._run(), name="send-clock")
        try:
            await playback.done
        finally:
            if not playback.done.done():  # cancelled: make sure the clock forgets it
                playback.done.cancel()
        return playback.next, t0

    async def _run(self) -> None:
        heap = self._heap
        while heap:  # ends when no stream is playing; the next `play` starts it again
            await asyncio.sleep(self.period_s)
            now = time.perf_counter()
            while heap and heap[0][0] <= now:
                _, order, playback = heapq.heappop(heap)
                if self._send_due(playback, now):
                    heapq.heappush(heap, (playback.due, order, playback))

    def _send_due(self, playback: _Playback, now: float) -> bool:
        """Send the playback's due chunk; True if it has more to send later."""
        if playback.done.done():
            return False
        try:
            sent = not playback.finished.is_set() and playback.send(playback.next, 1000.0 * (now - playback.due))
        except Exception as err:  # the stream's own task raises it; the clock goes on for the others
            playback.done.set_exception(err)
            return False
        if not sent:
            playback.done.set_result(None)
            return False
        playback.next += 1
        if playback.next == len(playback.chunks):
            playback.done.set_result(None)
            return False
        playback.due = playback.t0 + playback.starts[playback.next]
        return True

"""The load generator's shared send clock: real-time order, early stop, hand-back, cancellation."""

from __future__ import annotations

import asyncio
import time

from firstspike.client.send_clock import SendClock

STARTS = [0.0, 0.03, 0.06, 0.09, 0.12]  # four 30 ms chunks, and the end of the last


def _recorder(accept_until: int = 99):
    sent: list[tuple[int, float]] = []

    def send(k: int, lag_ms: float) -> bool:
        if k >= accept_until:
            return False
        sent.append((k, time.perf_counter()))
        return True

    return sent, send


def test_streams_share_one_clock_and_each_chunk_waits_for_its_time():
    async def main():
        clock = SendClock(period_s=0.002)
        runs = [_recorder() for _ in range(3)]
        results = await asyncio.gather(*[
            clock.play([b"x"] * 4, STARTS, send, asyncio.Event()) for _, send in runs
        ])
        return runs, results

    runs, results = asyncio.run(main())
    for (sent, _), (count, t0) in zip(runs, results):
        assert count == 4
        assert [k for k, _ in sent] == [0, 1, 2, 3]
        for k, at in sent:
            assert at >= t0 + STARTS[k]  # never ahead of real time


def test_a_finished_session_stops_and_a_refused_send_hands_the_rest_back():
    async def main():
        clock = SendClock(period_s=0.002)
        finished = asyncio.Event()
        sent_a, send_a = _recorder()
        sent_b, send_b = _recorder(accept_until=2)
        play_a = asyncio.ensure_future(clock.play([b"x"] * 4, STARTS, send_a, finished))
        play_b = asyncio.ensure_future(clock.play([b"x"] * 4, STARTS, send_b, asyncio.Event()))
        await asyncio.sleep(0.045)  # chunks 0 and 1 are out
        finished.set()
        return await play_a, sent_a, await play_b, sent_b

    (count_a, _), sent_a, (count_b, _), sent_b = asyncio.run(main())
    assert count_a == 2 and [k for k, _ in sent_a] == [0, 1]
    assert count_b == 2 and [k for k, _ in sent_b] == [0, 1]  # chunk 2 onwards goes back to the caller


def test_a_cancelled_playback_is_forgotten():
    async def main():
        clock = SendClock(period_s=0.002)
        sent, send = _recorder()
        play = asyncio.ensure_future(clock.play([b"x"] * 4, STARTS, send, asyncio.Event()))
        await asyncio.sleep(0.01)
        play.cancel()
        await asyncio.sleep(0.15)
        return sent, play.cancelled()

    sent, cancelled = asyncio.run(main())
    assert cancelled and [k for k, _ in sent] == [0]


def test_a_failing_send_reaches_its_stream_and_spares_the_others():
    async def main():
        clock = SendClock(period_s=0.002)
        sent, send = _recorder()

        def broken(k: int, lag_ms: float) -> bool:
            if k == 1:
                raise RuntimeError("socket exploded")
            return True

        failing = asyncio.ensure_future(clock.play([b"x"] * 4, STARTS, broken, asyncio.Event()))
        healthy = await clock.play([b"x"] * 4, STARTS, send, asyncio.Event())
        return failing, healthy, sent

    failing, (count, _), sent = asyncio.run(main())
    assert isinstance(failing.exception(), RuntimeError)
    assert count == 4 and [k for k, _ in sent] == [0, 1, 2, 3]

"""Admission by load: how many streams the host can carry right now, from how busy the scheduler is.

Past its capacity a server that admits every stream serves none of them in time: at 1400 streams on
the 2-core VM, 516 of 11,519 decisions came within 100 ms (docs/benchmarks.md, *Server: admission by
load*). Refusing every new stream whenever the load is over the limit was worse than nothing at 1000
streams (0 of 1000 held against 997): the limit flickers, each opening admits the whole queue of
retrying clients at once, and refusing them costs CPU too. Instead the streams' cost is taken as
proportional to their number: with S streams open (on average over the last few seconds) and the
scheduler busy a share L of that time, the host carries about S × max_load / L streams at `max_load`.
That is the cap; new streams are refused only above it, so the server admits as many streams as it
gains room for, and the cap follows the host as it speeds up or slows down.
"""

from __future__ import annotations

import math

from firstspike.server.load_meter import LOAD_TIME_CONSTANT_S

# Below this share of max_load the estimate is noise (few streams, short ticks): no cap.
_ENGAGE = 0.5
# Never capped below this many streams: one client sending faster than real time (a file upload over
# the stream protocol) can keep the scheduler busy on its own, and must not lock others out.
MIN_CAP = 16


class LoadAdmission:
    """The stream cap from the load; `max_sessions` is a separate, fixed limit (refused with 1013)."""

    def __init__(self, max_load: float, time_constant_s: float = LOAD_TIME_CONSTANT_S):
        self.max_load = max_load
        self.time_constant_s = time_constant_s
        self.cap: float | None = None  # None: no cap (light load, or admission by load turned off)
        self._streams = 0.0  # streams open, averaged like the load (same time constant)
        self._at: float | None = None

    @property
    def enabled(self) -> bool:
        return self.max_load < 1.0

    def admits(self, streams: int, load: float, now: float) -> bool:
        """May one stream more open, with `streams` open now and the scheduler at `load`?"""
        if not self.enabled:
            return True
        self._update(streams, load, now)
        return self.cap is None or streams < self.cap

    def _update(self, streams: int, load: float, now: float) -> None:
        if self._at is None:
            self._streams = float(streams)
        elif now > self._at:
            weight = 1.0 - math.exp(-(now - self._at) / self.time_constant_s)
            self._streams += weight * (streams - self._streams)
        self._at = now if self._at is None else max(now, self._at)
        if load < _ENGAGE * self.max_load:
            self.cap = None
        else:
            self.cap = max(float(MIN_CAP), self._streams * self.max_load / load)

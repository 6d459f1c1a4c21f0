"""How busy a batching scheduler has been lately: the server's own measure of its headroom.

A fixed session limit cannot know what the host can carry: on a shared VM the same server held all
1000 streams one hour and a few hundred the next (docs/benchmarks.md). What it can know is how much of
each second its scheduler spends in ticks. Near 1, ticks run back to back and every stream's latency
grows with each stream added, so the server refuses new streams there (`ServerSettings.max_load`)
instead of letting all of them fall behind together.

The average is exponentially weighted over time (not over ticks), so it is exact whatever the tick
rate: a scheduler busy a share f of every second reads f, one busy throughout rises towards 1 with
time constant `time_constant_s`, and an idle one decays towards 0 without being told.
"""

from __future__ import annotations

import math
import time

# Long enough that a spike of a second or so (a collection, the VM pausing) does not read as overload,
# short enough to follow a host that slows down for minutes: at 1000 streams on the 2-core VM, 1 s
# refused a few streams in runs that held all of them without it (docs/benchmarks.md, *Server: admission by load*).
LOAD_TIME_CONSTANT_S = 3.0


class LoadMeter:
    def __init__(self, time_constant_s: float = LOAD_TIME_CONSTANT_S, now: float | None = None):
        if time_constant_s <= 0:
            raise ValueError(f"time_constant_s must be positive, got {time_constant_s!r}")
        self.time_constant_s = time_constant_s
        self._value = 0.0
        self._at = time.perf_counter() if now is None else now

    def add_busy(self, began: float, ended: float) -> None:
        """Count the busy interval [began, ended] (perf_counter seconds; intervals come in order)."""
        value = self.value(began)
        busy = max(0.0, ended - max(began, self._at))
        # Over a busy interval the average moves towards 1 as it would decay towards 0 when idle.
        self._value = 1.0 - (1.0 - value) * math.exp(-busy / self.time_constant_s)
        self._at = max(ended, self._at)

    def value(self, now: float | None = None) -> float:
        """The busy share of the recent past, in [0, 1], as of `now` (default: the present)."""
        idle = (time.perf_counter() if now is None else now) - self._at
        if idle <= 0:
            return self._value
        return self._value * math.exp(-idle / self.time_constant_s)

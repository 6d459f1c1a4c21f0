"""Keep CPython's full garbage collections from stalling every stream of a busy process.

A full (oldest-generation) collection walks every tracked object while the whole process waits: the
event loop, and the model thread as soon as it needs the GIL. Under load that took 80–170 ms at a time
in `firstspike serve` and 40–70 ms in each `firstspike bench` generator process, and it was most of the
server's p99 at 600 streams (docs/benchmarks.md, "Full GC collections";
`PYTHONPATH=bench/gc_pauses` logs them). Both long-running commands call this once, after start-up:
- `gc.freeze()` moves everything made so far (modules, models, the app: a few hundred thousand objects
  that live as long as the process) to a permanent generation that collections skip;
- full collections come after 100 middle-generation ones instead of CPython's 10. Young cycles are
  collected as often as before; the full collection still runs, a tenth as often.

What a full collection has to free matters as much as how often it runs: an ended websocket
connection left in a reference cycle waits for one, and 125 of them end every second at 1000 streams.
`server/direct_audio.py` breaks those cycles when the connection is lost.

Not for library code or tests: frozen objects are never freed.
"""

from __future__ import annotations

import gc

FULL_COLLECTION_EVERY = 100  # middle-generation collections per full one


def calm_the_garbage_collector() -> None:
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)

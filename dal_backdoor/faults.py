"""Crash points for fault-injection tests (inactive unless an environment variable names one).

``DAL_BACKDOOR_CRASH_AT="<point>:<n>"`` makes the process kill itself with SIGKILL the n-th time
it reaches ``<point>`` (counted per process). Points:

- ``atomic-write``: a temp file is written and synced but not yet renamed over its target
  (checkpoints, models, metrics, configs);
- ``store-write``: an SQLite write transaction has run its statements but not committed.

The reliability tests use this to kill sweeps at the worst moments; in normal use the variable
is unset and ``crash_point`` is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "DAL_BACKDOOR_CRASH_AT"
_hits: dict[str, int] = {}


def crash_point(point: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, count = spec.partition(":")
    if name != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)

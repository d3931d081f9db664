"""Keep a signal from landing between two writes that must agree.

After each epoch the trainer writes the checkpoint and then the store's epoch row; a SIGINT or
SIGTERM between the two (both raise an exception in the main thread) would leave a checkpoint
one epoch ahead of the store. ``deferred_signals`` holds SIGINT and SIGTERM for the duration of
the block and delivers them, to the handlers that were installed before, right after it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM inside the block and re-raise them after it (main thread only;
    elsewhere, where handlers cannot be changed, the block runs as is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001 - handler signature
        received.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in DEFERRED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(received):
            os.kill(os.getpid(), signum)

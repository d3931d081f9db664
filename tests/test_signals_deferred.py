from __future__ import annotations

import os
import signal
import threading

import pytest

from dal_backdoor.signals import deferred_signals


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt here, even if the test runner was started with SIGINT
    ignored (a background job of a non-interactive shell, e.g. under nohup)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_raises")
def test_a_signal_inside_the_block_is_delivered_after_it() -> None:
    steps: list[str] = []
    with pytest.raises(KeyboardInterrupt):  # noqa: PT012 - the order of the steps is the point
        with deferred_signals():
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("first write")
            steps.append("second write")
        steps.append("after the block")
    assert steps == ["first write", "second write"]


def test_handlers_are_restored_and_nothing_is_raised_without_a_signal() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with deferred_signals():
        pass
    assert signal.getsignal(signal.SIGTERM) is before


def test_outside_the_main_thread_the_block_just_runs() -> None:
    seen: list[object] = []

    def work() -> None:
        with deferred_signals():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [signal.getsignal(signal.SIGINT)]

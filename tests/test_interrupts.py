"""Ctrl-C during a compute is noted, held back where it would do harm, and never lost."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from tarry._schedule import interrupts


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


class SwallowsCtrlC:
    """Sends Ctrl-C from its finalizer: Python prints the KeyboardInterrupt and drops it."""

    def __del__(self) -> None:
        ctrl_c()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_lost_in_a_finalizer_is_raised_where_the_driver_waits() -> None:
    with interrupts.watching():
        SwallowsCtrlC()  # dropped at once: its finalizer runs, and its Ctrl-C is lost, here
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
        interrupts.check()  # raised once only


def test_a_ctrl_c_is_held_back_while_the_block_defers_it() -> None:
    deferring = [True]
    with interrupts.watching(defer_while=lambda: deferring[0]):
        ctrl_c()  # no KeyboardInterrupt here
        interrupts.check()  # not while it still defers
        deferring[0] = False
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()


def test_a_ctrl_c_not_deferred_raises_at_once() -> None:
    reached: list[str] = []

    def interrupted() -> None:
        with interrupts.watching():
            ctrl_c()
            reached.append("after the signal")  # handled at the next instruction: never

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert reached == []


def test_python_s_handler_is_back_after_the_block_even_when_it_raises() -> None:
    def nested() -> None:
        with interrupts.watching(), interrupts.watching():
            ctrl_c()

    with pytest.raises(KeyboardInterrupt):
        nested()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    interrupts.check()  # nothing noted survives the block


def test_a_program_s_own_handler_is_kept() -> None:
    heard: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: heard.append(signum))
    try:
        with interrupts.watching(defer_while=lambda: True):
            assert signal.getsignal(signal.SIGINT) is not interrupts._on_sigint
            ctrl_c()
        assert heard == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_another_thread_watches_nothing() -> None:
    seen: list[object] = []

    def other() -> None:
        with interrupts.watching(defer_while=lambda: True):
            seen.append(signal.getsignal(signal.SIGINT))
            interrupts.check()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen == [signal.default_int_handler]

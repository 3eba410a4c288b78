"""Ctrl-C during a compute: never lost, and never in the middle of starting a process.

Python's SIGINT handler raises ``KeyboardInterrupt`` wherever the main thread
happens to be. Two places of a ``"processes"`` compute cannot take it:

* loky starting a worker process inside ``executor.submit``: interrupted
  between the fork and loky's bookkeeping, the new worker is known to
  nobody, and it and a pipe to it stay until the interpreter exits;
* a finalizer that the garbage collector runs (such as loky's, for the
  semaphores of a broken pool): Python prints an exception raised there as
  "Exception ignored in ..." and drops it, and the compute runs on as if no
  Ctrl-C had come.

So while a compute is :func:`watching`, SIGINT is noted before it raises;
while ``defer_while()`` is true it is only noted, and :func:`check`, which
the driver calls each time it waits, raises a noted Ctrl-C that never
arrived. Only the main thread receives signals, and only Python's own
handler is replaced: a program with a SIGINT handler of its own keeps it.

::

    SIGINT ──> _on_sigint ──> noted ──(not deferred)──> raise KeyboardInterrupt
                                │                             │ (lost in a finalizer)
                                └──── check() in the driver <─┘ raises it again

Examples
--------
>>> import os, signal
>>> starting_a_worker = [True]
>>> with watching(defer_while=lambda: starting_a_worker[0]):
...     os.kill(os.getpid(), signal.SIGINT)  # deferred: only noted
...     starting_a_worker[0] = False
...     try:
...         check()
...     except KeyboardInterrupt:
...         print("raised where the driver waits")
raised where the driver waits
>>> signal.getsignal(signal.SIGINT) is signal.default_int_handler
True
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["check", "watching"]

#: a SIGINT came while a compute watched, and no KeyboardInterrupt has reached check() since
_noted = False
#: how many computes of the main thread watch (a signal handler may compute too)
_depth = 0


def _never() -> bool:
    return False


#: while this returns True, a SIGINT is only noted
_defer_while: Callable[[], bool] = _never


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _noted
    _noted = True
    if not _defer_while():
        raise KeyboardInterrupt


@contextmanager
def watching(defer_while: Callable[[], bool] = _never) -> Iterator[None]:
    """Note every Ctrl-C of the block, and hold it back while ``defer_while()`` is true.

    Does nothing outside the main thread, or when the program has its own
    SIGINT handler.
    """
    global _depth, _noted, _defer_while
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth == 0:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            yield
            return
        _noted, _defer_while = False, defer_while
        signal.signal(signal.SIGINT, _on_sigint)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            _noted, _defer_while = False, _never


def check() -> None:
    """Raise ``KeyboardInterrupt`` for a Ctrl-C that was noted and never arrived.

    Called where a driver waits, outside the code that defers it.
    """
    global _noted
    if _noted and not _defer_while() and threading.current_thread() is threading.main_thread():
        _noted = False
        raise KeyboardInterrupt

"""Observers: code told when a compute starts and ends, on every scheduler.

An :class:`Observer` has two methods, ``started(run, scheduler, workers)``
and ``finished(run, error)``. :func:`tarry._compute.run_graph` runs the
backend inside :func:`watching`, which calls ``started`` on each active
observer after the :class:`~tarry._schedule.core.Run` is planned and before
the backend runs it, and ``finished`` afterwards, whatever happens (task
error, Ctrl-C). Every backend drives a ``Run``, so what an observer sees is
the same on every scheduler. This module runs nothing itself: the caller
makes the one backend call inside the ``with`` block.

An observer that wants per-task timings calls ``run.want_timings()`` in
``started`` (a second call keeps what the first asked for), and reads
``run.events`` in ``finished``.

The registry below is the only shared state. It is changed only by entering
and leaving an :class:`Observer`, so an observer is active exactly inside a
``with`` block. It is process-wide: a compute started by any thread inside
the block is observed, including computes nested in tasks. It is a tuple that
is replaced, never mutated, so ``run_graph`` reads it without a lock; with no
observer active a compute pays one truth test of an empty tuple.

Examples
--------
>>> from tarry import delayed
>>> from tarry._tools import observe
>>> class Count(Observer):
...     def __init__(self) -> None:
...         self.computes = 0
...     def started(self, run: Run, scheduler: str, workers: int) -> None:
...         self.computes += 1
...     def finished(self, run: Run, error: BaseException | None) -> None:
...         pass
>>> with Count() as count:
...     _ = delayed(abs)(-1).compute(scheduler="sync")
>>> count.computes, observe.active
(1, ())
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import TypeVar

from tarry._schedule.core import Run

__all__ = ["Observer", "Watch", "active", "watching"]

_Self = TypeVar("_Self", bound="Observer")


class Observer:
    """Code told about every compute while it is active: inside its ``with`` block.

    Entering adds the observer to :data:`active`, leaving removes it again
    (one occurrence, so the same object may be entered twice, nested).
    Subclasses implement ``started`` and ``finished``.
    """

    def started(self, run: Run, scheduler: str, workers: int) -> None:
        """The run is planned and about to be handed to the backend."""
        raise NotImplementedError

    def finished(self, run: Run, error: BaseException | None) -> None:
        """The backend returned (``error`` is the task error) or raised ``error``."""
        raise NotImplementedError

    def __enter__(self: _Self) -> _Self:
        global active
        with _lock:
            active = (*active, self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        global active
        with _lock:
            items = list(active)
            # the most recent entry is this block's own
            last = len(items) - 1 - items[::-1].index(self)
            del items[last]
            active = tuple(items)


#: observers active now, oldest first
active: tuple[Observer, ...] = ()
_lock = threading.Lock()


class Watch:
    """The observers of one run, told it started on entry and how it ended on exit.

    Set :attr:`error` inside the block to the task error the backend
    returned; an exception leaving the block is the error otherwise. It
    stays readable after the block, for whoever records the run.
    """

    __slots__ = ("begun", "error", "observers", "run", "scheduler", "workers")

    def __init__(
        self, run: Run, scheduler: str, workers: int, observers: tuple[Observer, ...]
    ) -> None:
        self.run = run
        self.scheduler = scheduler
        self.workers = workers
        self.observers = observers
        #: the observers whose ``started`` returned: only they are told the end
        self.begun: list[Observer] = []
        #: how the run ended: the task error, the exception that stopped it, or None
        self.error: BaseException | None = None

    def __enter__(self) -> Watch:
        if self.observers:
            try:
                for observer in self.observers:
                    observer.started(self.run, self.scheduler, self.workers)
                    self.begun.append(observer)
            except BaseException as exc:
                self.error = exc
                _finish_all(self.begun, self.run, exc)
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.error = exc
        if self.begun:
            _finish_all(self.begun, self.run, self.error)


def watching(run: Run, scheduler: str, workers: int, also: Sequence[Observer] = ()) -> Watch:
    """Tell every active observer, and those in ``also``, about ``run``.

    ``scheduler`` and ``workers`` are what observers are told: the
    scheduler's name and how many tasks it runs at once.

    Examples
    --------
    >>> from tarry._graph import Task
    >>> from tarry._schedule.sync import run_sync
    >>> run = Run([Task("k", abs, (-1,), None, (), "abs")])
    >>> class Told(Observer):
    ...     def started(self, run: Run, scheduler: str, workers: int) -> None:
    ...         print("started on", scheduler)
    ...     def finished(self, run: Run, error: BaseException | None) -> None:
    ...         print("finished with", error)
    >>> with watching(run, "sync", 1, also=[Told()]) as watch:
    ...     watch.error = run_sync(run)
    started on sync
    finished with None
    """
    return Watch(run, scheduler, workers, (*active, *also) if also else active)


def _finish_all(observers: list[Observer], run: Run, error: BaseException | None) -> None:
    """Call every ``finished``, even when one raises: each may own a thread to stop."""
    problem: BaseException | None = None
    for observer in reversed(observers):
        try:
            observer.finished(run, error)
        except BaseException as exc:
            problem = problem or exc
    if problem is not None:
        raise problem

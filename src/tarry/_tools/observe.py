"""Observers: code told when a compute starts and ends, on every scheduler.

An observer has two methods, ``started(run, scheduler, workers)`` and
``finished(run, error)``. :func:`tarry._compute.run_graph` calls ``started``
on each active observer after it has planned the :class:`~tarry._schedule.core.Run`
and before the backend runs it, and ``finished`` afterwards, whatever happens
(task error, Ctrl-C). Every backend drives a ``Run``, so what an observer sees
is the same on every scheduler.

An observer that wants per-task timings sets ``run.events = []`` in
``started`` **only if it is still None** (another observer may already have
asked), and reads ``run.events`` in ``finished``.

The registry below is the only shared state. It is changed only by the
:class:`Observing` context manager, so an observer is active exactly inside a
``with`` block. It is process-wide: a compute started by any thread inside
the block is observed, including computes nested in tasks. It is a tuple that
is replaced, never mutated, so ``run_graph`` reads it without a lock; with no
observer active a compute pays one truth test of an empty tuple.

Examples
--------
>>> from tarry import delayed
>>> from tarry._tools import observe
>>> class Count(Observing):
...     def __init__(self) -> None:
...         self.runs = 0
...     def started(self, run: Run, scheduler: str, workers: int) -> None:
...         self.runs += 1
...     def finished(self, run: Run, error: BaseException | None) -> None:
...         pass
>>> with Count() as count:
...     _ = delayed(abs)(-1).compute(scheduler="sync")
>>> count.runs, observe.active
(1, ())
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Protocol, TypeVar

from tarry._schedule import Backend
from tarry._schedule.core import Run
from tarry._schedule.cpus import usable_cpus

__all__ = ["Observer", "Observing", "active", "describe", "run_observed"]


class Observer(Protocol):
    """What ``run_graph`` calls around each run."""

    def started(self, run: Run, scheduler: str, workers: int) -> None:
        """The run is planned and about to be handed to the backend."""

    def finished(self, run: Run, error: BaseException | None) -> None:
        """The backend returned (``error`` is the task error) or raised ``error``."""


#: observers active now, oldest first
active: tuple[Observer, ...] = ()
_lock = threading.Lock()

_Self = TypeVar("_Self", bound="Observing")


class Observing:
    """Base of observers that are active inside a ``with`` block.

    Entering adds the observer to :data:`active`, leaving removes it again
    (one occurrence, so the same object may be entered twice, nested).
    Subclasses implement ``started`` and ``finished``.
    """

    def started(self, run: Run, scheduler: str, workers: int) -> None:
        raise NotImplementedError

    def finished(self, run: Run, error: BaseException | None) -> None:
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


def run_observed(
    run: Run, backend: Backend, scheduler: object, num_workers: int | None, progress: bool
) -> BaseException | None:
    """``backend(run, num_workers)`` with every active observer told about it.

    ``progress=True`` adds a progress bar for this run alone, unless one is
    already active. Observers are told the scheduler's name and workers as
    :func:`describe` gives them.
    """
    observers = active
    if progress:
        from tarry._tools.progress import ProgressBar

        if not any(isinstance(o, ProgressBar) for o in observers):
            observers = (*observers, ProgressBar())
    name, workers = describe(scheduler, num_workers)
    begun: list[Observer] = []
    error: BaseException | None = None
    try:
        for observer in observers:
            observer.started(run, name, workers)
            begun.append(observer)
        error = backend(run, num_workers)
        return error
    except BaseException as exc:
        error = exc
        raise
    finally:
        _finish_all(begun, run, error)


def describe(scheduler: object, num_workers: int | None) -> tuple[str, int]:
    """A scheduler's name and how many tasks it runs at once.

    1 for ``"sync"``; a ``concurrent.futures.Executor`` is named by its class
    and sized by its pool; otherwise ``num_workers`` or the usable CPUs (the
    default of every pool-based backend).

    Examples
    --------
    >>> describe("sync", 4), describe("threads", 3)
    (('sync', 1), ('threads', 3))
    """
    if isinstance(scheduler, str):
        return scheduler, 1 if scheduler == "sync" else num_workers or usable_cpus()
    size = getattr(scheduler, "_max_workers", None)
    workers = size if isinstance(size, int) and size > 0 else num_workers or usable_cpus()
    return type(scheduler).__name__, workers


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

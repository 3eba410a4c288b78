"""How a task is timed: one way to measure, one reading, one record.

Wherever a task runs (this thread, a pool thread, a worker process, a Ray
or Dask worker), a :class:`Stopwatch` started just before the call gives a
:class:`Timing` just after it: the worker that ran it (:func:`worker_name`:
``pid:thread``, and ``@host`` for a task run on another machine than the
caller's),
start and end (:func:`time.perf_counter`) and the thread CPU time used. A
worker process of the pool reads the pool's parent's clock: Python does
not promise that ``perf_counter`` is one clock for every process (Linux's
is), so elsewhere a worker adds the offset between its clock and the
parent's, measured against the wall clock when it starts
(:func:`clock_anchor`, :func:`clock_shift`). The reading travels back as
it is; :meth:`tarry._schedule.core.Run.record` keeps it as a
:class:`TaskEvent`, the one record diagnostics read. (The processes
backend sends a batch's readings as a flat list of floats, the cheapest to
pickle, and makes them Timings on arrival.)

Examples
--------
>>> watch = Stopwatch()
>>> timing = watch.stop()
>>> timing.end >= timing.start, timing.worker == worker_name()
(True, True)
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

from tarry import _platform

__all__ = [
    "HOST", "Stopwatch", "TaskEvent", "Timing", "clock_anchor", "clock_shift", "for_caller",
    "wall_anchor", "worker_name",
]  # fmt: skip

#: this machine's name, short form (up to the first dot, as ``hostname -s``):
#: what names a worker on another machine than the caller's
HOST = socket.gethostname().partition(".")[0]


class Timing(NamedTuple):
    """One task's reading, as a worker sends it back."""

    worker: str
    start: float
    end: float
    cpu: float


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """What one task did: measured where it ran, not where it was scheduled.

    ``start`` and ``end`` are readings of the caller's
    :func:`time.perf_counter` (worker processes convert theirs, see
    :func:`clock_shift`); ``cpu`` is the thread CPU time the task used, in
    seconds.
    """

    key: str
    name: str
    worker: str
    start: float
    end: float
    cpu: float


_this_thread = threading.local()


def worker_name(caller: str = HOST) -> str:
    """How events name the thread and process that ran a task (cached per thread).

    ``pid:thread`` on the machine named ``caller`` (the one that asked for
    the task; this one by default), ``pid:thread@host`` elsewhere: pictures
    and reports tell the hosts of a cluster apart and stay short on one
    machine.

    Examples
    --------
    >>> name = worker_name()
    >>> name == f"{os.getpid()}:{threading.current_thread().name}"
    True
    >>> worker_name(caller="another-machine") == f"{name}@{HOST}"
    True
    """
    pid = os.getpid()
    cached: tuple[int, str] | None = getattr(_this_thread, "worker_name", None)
    if cached is None or cached[0] != pid:  # a forked child inherits the cache
        cached = _this_thread.worker_name = (pid, f"{pid}:{threading.current_thread().name}")
    return cached[1] if caller == HOST else f"{cached[1]}@{HOST}"


class Stopwatch:
    """Started when made; :meth:`stop` reads it (once per task)."""

    __slots__ = ("cpu", "start")

    def __init__(self) -> None:
        self.cpu = time.thread_time()
        self.start = time.perf_counter()

    def stop(self) -> Timing:
        """The reading from the start until now, on this thread."""
        end = time.perf_counter()
        return Timing(worker_name(), self.start, end, time.thread_time() - self.cpu)


def clock_anchor() -> float | None:
    """What a worker process needs to read this process's ``perf_counter``: None if it can as is.

    The wall-clock time when this process's ``perf_counter`` read 0, where
    ``perf_counter`` is not known to be one clock for every process (see
    :func:`tarry._platform.shared_perf_counter`).
    """
    return None if _platform.shared_perf_counter() else wall_anchor()


def clock_shift(anchor: float | None) -> float:
    """Seconds to add to this process's ``perf_counter`` to read the clock ``anchor`` came from.

    Both processes measure their clock against the wall clock, once: the
    result is as good as the wall clock between the two moments (an NTP step
    meanwhile shifts it; the offset is measured when a worker starts).

    Examples
    --------
    >>> clock_shift(None)
    0.0
    >>> anchor = wall_anchor() - 100.0  # a clock 100 s ahead
    >>> round(clock_shift(anchor))
    100
    """
    return 0.0 if anchor is None else wall_anchor() - anchor


def wall_anchor() -> float:
    """The wall-clock time when this process's ``perf_counter`` read 0.

    What a Ray or Dask task takes along, so that a worker on another machine
    can put its readings on the caller's clock (:func:`for_caller`).
    """
    return time.time() - time.perf_counter()


def for_caller(timing: Timing, caller: str, anchor: float) -> Timing:
    """``timing``, read here, as the caller on host ``caller`` (with ``anchor``) reads it.

    The worker is named as :func:`worker_name` names it for that caller. On
    the caller's own machine, where ``perf_counter`` is one clock, the
    readings stay as they are; elsewhere they move by the difference of the
    two machines' offsets to their wall clocks, so a timeline of several
    hosts is as well aligned as their wall clocks are (NTP: milliseconds).

    Examples
    --------
    >>> reading = Timing(worker_name(), 10.0, 11.0, 0.5)
    >>> for_caller(reading, HOST, wall_anchor()) == reading or not _platform.shared_perf_counter()
    True
    >>> moved = for_caller(reading, "another-machine", wall_anchor() - 100.0)
    >>> round(moved.start - reading.start), round(moved.end - reading.end)
    (100, 100)
    >>> moved.worker == f"{worker_name()}@{HOST}"
    True
    """
    shift = 0.0 if caller == HOST and _platform.shared_perf_counter() else clock_shift(anchor)
    return timing._replace(
        worker=worker_name(caller), start=timing.start + shift, end=timing.end + shift
    )

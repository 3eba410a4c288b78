"""How a task is timed: one way to measure, one reading, one record.

Wherever a task runs (this thread, a pool thread, a worker process, a Ray
or Dask worker), a :class:`Stopwatch` started just before the call gives a
:class:`Timing` just after it: the worker that ran it (:func:`worker_name`),
start and end (:func:`time.perf_counter`) and the thread CPU time used. The
reading travels back as it is; :meth:`tarry._schedule.core.Run.record`
keeps it as a :class:`TaskEvent`, the one record diagnostics read. (The
processes backend sends a batch's readings as a flat list of floats, the
cheapest to pickle, and makes them Timings on arrival.)

Examples
--------
>>> watch = Stopwatch()
>>> timing = watch.stop()
>>> timing.end >= timing.start, timing.worker == worker_name()
(True, True)
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Stopwatch", "TaskEvent", "Timing", "worker_name"]


class Timing(NamedTuple):
    """One task's reading, as a worker sends it back."""

    worker: str
    start: float
    end: float
    cpu: float


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """What one task did: measured where it ran, not where it was scheduled.

    ``start`` and ``end`` are :func:`time.perf_counter` readings (one clock
    for all processes of a Linux machine); ``cpu`` is the thread CPU time the
    task used, in seconds.
    """

    key: str
    name: str
    worker: str
    start: float
    end: float
    cpu: float


_this_thread = threading.local()


def worker_name() -> str:
    """How events name the thread and process that ran a task (cached per thread)."""
    pid = os.getpid()
    cached: tuple[int, str] | None = getattr(_this_thread, "worker_name", None)
    if cached is None or cached[0] != pid:  # a forked child inherits the cache
        cached = _this_thread.worker_name = (pid, f"{pid}:{threading.current_thread().name}")
    return cached[1]


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

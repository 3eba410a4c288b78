"""How a task is timed: one way to measure, one reading, one record.

Wherever a task runs (this thread, a pool thread, a worker process, a Ray
or Dask worker), a :class:`Stopwatch` started just before the call gives a
:class:`Timing` just after it: the worker that ran it (:func:`worker_name`:
``pid:thread``, and ``@host`` for a task run on another machine than the
caller's),
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
import socket
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["HOST", "Stopwatch", "TaskEvent", "Timing", "worker_name"]

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

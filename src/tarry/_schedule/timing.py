"""How a task is timed: one record type, measured where the task ran.

Every backend reports a task's timing as a :class:`TaskEvent`'s fields:
the worker that ran it (:func:`worker_name`), start and end
(:func:`time.perf_counter`) and the thread CPU time it used.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from tarry._graph import Task, call

__all__ = ["TaskEvent", "timed_call", "worker_name"]


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


def timed_call(task: Task, values: dict[str, Any]) -> tuple[Any, float, float, float]:
    """``call(task, values)`` plus its start, end and CPU time, for profiling."""
    cpu = time.thread_time()
    start = time.perf_counter()
    value = call(task, values)
    end = time.perf_counter()
    return value, start, end, time.thread_time() - cpu

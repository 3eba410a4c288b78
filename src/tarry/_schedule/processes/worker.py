"""The worker side: what a pool process runs for one batch of units.

A batch arrives as slim tasks (see :func:`~tarry._schedule.wire.slim`) with
the pickled inputs they read; the worker runs each unit's tasks in order,
drops an input after its last reader, and sends back only each unit's
outputs, as bytes or as a shared-memory file (:mod:`~tarry._schedule.transfer`),
with their timings; a failure comes back as an error packet.

A worker watches its parent: when the parent dies without stopping it
(SIGKILL, ``os._exit``), the worker exits too, even in the middle of a long
task, rather than run on for nobody until its idle timeout (see
:mod:`~tarry._schedule.processes.liveness`). Task timings are readings of
the parent's clock (see :func:`~tarry._schedule.timing.clock_shift`).
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from tarry import _platform
from tarry._graph import Task, call
from tarry._schedule.errors import describe
from tarry._schedule.processes.liveness import watch_parent
from tarry._schedule.processes.markers import MARKER, marker_name, worker_tag
from tarry._schedule.timing import clock_shift, worker_name
from tarry._schedule.transfer import Blob, discard, from_blob, tag_files, to_blob
from tarry._schedule.wire import not_loaded_error, pack_error, result_error

__all__ = [
    "PARENT_POLL",
    "Outcome",
    "in_pool_code",
    "in_worker",
    "init_worker",
    "run_batch",
    "run_for",
]

#: seconds between two looks of a worker at whether its parent is alive: a
#: look is one getppid() call, so this only bounds how long an orphan lingers
PARENT_POLL = 0.5

#: True in a worker process of the pool
_in_worker = False
#: the tag of this worker's files (its pool); set by init_worker
_tag = ""
#: this worker's marker file: (directory, descriptor); descriptor -1 when unusable
_marker: tuple[str, int] | None = None
#: the token of the run whose batch this worker runs (see run_for)
_token = 0
#: seconds added to perf_counter to read the parent's clock (set by init_worker)
_shift = 0.0
_IDLE = MARKER.pack(0, 0)
#: whether markers are written with one pwrite call (not on Windows)
_PWRITE = _platform.has_pwrite()


class _PoolCode(threading.local):
    #: how deep this thread is in the pool's own code (see in_pool_code)
    depth = 0


#: per thread: inside the pool's code (pool.py counts, in_worker reads)
in_pool_code = _PoolCode()


def in_worker() -> bool:
    """True where a compute on processes runs in the caller instead.

    In a worker process of the pool (every worker has a CPU of its own
    already); in a daemonic process, such as the worker of a
    ``multiprocessing`` pool, which may not start processes; and in a
    thread that is inside the pool's own code, holding its locks, which
    happens when a signal handler computes while its thread submits work:
    the handler would wait for a lock its own thread holds.
    """
    return _in_worker or in_pool_code.depth > 0 or multiprocessing.current_process().daemon


def init_worker(parent: int, pool: int, anchor: float | None = None) -> None:
    """Run once in each new worker process of pool ``pool``, started by process ``parent``.

    ``anchor``: the parent's :func:`~tarry._schedule.timing.clock_anchor`.
    """
    global _in_worker, _tag, _shift
    _in_worker = True
    _tag = worker_tag(pool)
    _shift = clock_shift(anchor)
    tag_files(_tag)
    # Ctrl-C in a terminal reaches the whole process group; the parent decides
    # what stops (and stops workers itself), so a worker never dies of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_watch_parent, args=(parent,), name="tarry-parent-watch", daemon=True
    ).start()


def _watch_parent(parent: int) -> None:
    # Polling, not prctl(PR_SET_PDEATHSIG): that signal comes when the
    # *thread* that started the worker ends, and any thread of the parent
    # may start workers.
    alive = watch_parent(parent)
    while alive():
        time.sleep(PARENT_POLL)
    os._exit(1)


def run_for(token: int, fn: Callable[..., Any], *args: Any) -> Any:
    """In a worker: ``fn(*args)`` for the run ``token``, which the marker notes with each task."""
    global _token
    _token = token
    return fn(*args)


def _open_marker(directory: str) -> int:
    global _marker
    if _marker is None or _marker[0] != directory:
        path = os.path.join(directory, marker_name(_tag, os.getpid()))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
        except OSError:
            fd = -1
        else:
            atexit.register(_remove, fd, path)  # a worker that exits cleanly leaves no marker
        _marker = (directory, fd)
    return _marker[1]


def _remove(fd: int, path: str) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)  # first: Windows removes no file that is open
    with contextlib.suppress(OSError):
        os.unlink(path)


def _note(fd: int, key: str | None) -> None:
    if fd >= 0:
        if key is None:
            data = _IDLE
        else:
            raw = key.encode()
            data = MARKER.pack(len(raw), _token) + raw
        with contextlib.suppress(OSError):
            if _PWRITE:
                os.pwrite(fd, data, 0)
            else:  # Windows: two calls; only this worker's one thread writes its marker
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, data)


#: one unit's outcome: (True, result bytes, timings) or (False, error, timings)
Outcome = tuple[bool, Any, list[float]]


def _load_units(code: bytes) -> list[tuple[list[Task], list[str]]]:
    """The units pickled in ``code``; if they do not unpickle, an error that always travels.

    Unpickling a MagicMock with recorded calls raises a RecursionError whose
    traceback is too deep for loky to send back: the worker would die of it.
    The parent finds which object failed (see ``wire.unloadable_error``).
    """
    try:
        units: list[tuple[list[Task], list[str]]] = pickle.loads(code)
        return units
    except Exception as exc:
        failure = RuntimeError(f"the worker process could not unpickle its tasks ({describe(exc)})")
    raise failure  # out of the handler: no context, a short traceback


def run_batch(
    markers: str, code: bytes, inputs: dict[str, Blob], timed: bool, last: frozenset[str]
) -> tuple[str, list[Outcome]]:
    """In a worker: run the units of one batch, stop at the first error.

    ``code`` is the pickled list of units, each its slim tasks in dependency
    order and the keys of its outputs (the results that leave it); ``inputs``
    the pickled values of what they need from outside; ``last`` the inputs
    that no task outside this batch reads: their files are removed as soon as
    the batch has read them (not when the parent learns it is done), so a
    value does not exist twice longer than needed. Returns the worker's
    name and, per unit run, its outcome: the pickled outputs (large ones as
    files in ``markers``, the parent's folder for such files), and the start,
    end (and CPU time, if ``timed``) of each task run.
    """
    units = _load_units(code)
    fd = _open_marker(markers)
    perf_counter, shift, cpu_clock = time.perf_counter, _shift, time.thread_time
    values: dict[str, Any] = {}
    outcomes: list[Outcome] = []
    # per input, how many units of the batch still have to read it
    loads: dict[str, int] = {}
    for tasks, _ in units:
        for key in {d.key for t in tasks for d in t.deps if d.key in inputs}:
            loads[key] = loads.get(key, 0) + 1
    try:
        for tasks, outputs in units:
            # readers inside the unit of each value it uses: a value no output
            # needs is dropped as soon as its last reader here has run
            readers: dict[str, int] = {}
            for task in tasks:
                for dep in task.deps:
                    readers[dep.key] = readers.get(dep.key, 0) + 1
            keep = set(outputs)
            times: list[float] = []
            for task in tasks:
                for dep in task.deps:
                    if dep.key not in values:
                        try:
                            values[dep.key] = from_blob(inputs[dep.key])
                        except Exception as exc:  # it pickled, but does not unpickle here
                            error = pack_error(not_loaded_error(task, exc), task.key)
                            outcomes.append((False, error, times))
                            return worker_name(), outcomes
                        loads[dep.key] -= 1
                        if not loads[dep.key] and dep.key in last:
                            discard(inputs[dep.key])
                _note(fd, task.key)
                cpu = cpu_clock() if timed else 0.0
                start = perf_counter() + shift
                try:
                    value = call(task, values)
                except BaseException as exc:  # SystemExit too: the task failed, not the worker
                    outcomes.append((False, pack_error(exc, task.key), times))
                    return worker_name(), outcomes
                times.append(start)
                times.append(perf_counter() + shift)
                if timed:
                    times.append(cpu_clock() - cpu)
                for dep in task.deps:
                    left = readers.get(dep.key)
                    if left is not None:
                        readers[dep.key] = left - 1
                        if left == 1 and dep.key not in keep:
                            del values[dep.key]
                values[task.key] = value
            blobs: list[Blob] = []
            for key in outputs:
                try:
                    blobs.append(to_blob(values.pop(key), markers))
                except Exception as exc:
                    for blob in blobs:
                        discard(blob)
                    task = next(t for t in tasks if t.key == key)
                    outcomes.append((False, pack_error(result_error(task, exc), key), times))
                    return worker_name(), outcomes
            for task in tasks:  # what stayed (results read by no one) goes now
                values.pop(task.key, None)
            outcomes.append((True, blobs, times))
    finally:
        _note(fd, None)
    return worker_name(), outcomes

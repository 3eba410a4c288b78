"""The pool's folder: death markers, and the files of worker processes that are gone.

One folder per parent process (in ``/dev/shm`` where it exists) holds what
the workers write: large values (see :mod:`~tarry._schedule.transfer`) and
one marker per worker, a small file where the worker notes the task it runs
and the run it runs it for (a few bytes per task, no syscall beyond a
``pwrite``). When the pool breaks, the parent reads the markers of the
workers that are gone and names their tasks in a
:class:`~tarry._schedule.errors.WorkerDiedError`.

Every file a worker writes is named after the pool it belongs to and its
pid (``w<pool>-<pid>-...``), so what the dead workers of a pool left can be
found and removed (:func:`sweep`).

Lifetimes: the folder belongs to the process that made it. It is removed at
that process's exit, and registered with loky's resource tracker, which
removes it if the process dies without cleaning up (SIGKILL, ``os._exit``)
once its workers are gone too. A forked child makes a folder of its own and
never removes its parent's, and registers it, and its pool's semaphores,
with a resource tracker of its own (:func:`own_resource_tracker`).

Examples
--------
>>> name = marker_name(worker_tag(3), 1234)
>>> name, worker_of(name), worker_of("1234-0.value")
('w3-1234-task', (3, 1234), None)
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import struct
import sys
import tempfile
import threading

from tarry import _platform
from tarry._schedule.processes.liveness import gone
from tarry._schedule.transfer import in_use

__all__ = [
    "MARKER",
    "dead_workers_tasks",
    "marker_dir",
    "marker_name",
    "own_resource_tracker",
    "runs_of_dead_workers",
    "sweep",
    "worker_of",
    "worker_tag",
]

#: a marker: the length of the task key, the run's token (0: idle), the key
MARKER = struct.Struct("<IQ")

#: (folder, pid of the process that made it)
_folder: tuple[str, int] | None = None
# reentrant: a signal handler may compute while this thread makes the folder
_lock = threading.RLock()
#: whether this process is a forked child still talking to its parent's tracker
_tracker_inherited = False


def marker_dir() -> str:
    """The directory where workers note their current task (made on first use)."""
    global _folder
    with _lock:
        if _folder is None or _folder[1] != os.getpid():
            base = _platform.shm_dir()
            # named after its process: whose it is shows, should it be left behind
            path = tempfile.mkdtemp(prefix=f"tarry-workers-{os.getpid()}-", dir=base)
            own_resource_tracker()
            _track(path)
            atexit.register(_remove_folder, path, os.getpid())
            _folder = (path, os.getpid())
        return _folder[0]


def own_resource_tracker() -> None:
    """In a forked child, register files with a resource tracker of the child's own.

    A forked child inherits its parent's connection to loky's resource
    tracker, which cleans up only once every process holding that connection
    is gone, the parent included. What the child registers (its folder, the
    semaphores of its pool) would then outlive a child that leaves by
    ``os._exit`` for as long as the parent lives; a tracker of its own, which
    loky starts on the next registration, cleans up when the child goes.
    Called before tarry registers anything, so what the parent registered
    stays with the parent's tracker; a no-op outside forked children.
    """
    global _tracker_inherited
    with _lock:
        if not _tracker_inherited:
            return
        _tracker_inherited = False
        module = sys.modules.get("loky.backend.resource_tracker")
        if module is None:  # nothing registered yet: loky starts a tracker when needed
            return
        tracker = module._resource_tracker
        # a thread of the parent may have held it at the fork
        tracker._lock = type(tracker._lock)()
        if tracker._fd is not None:
            with contextlib.suppress(OSError):
                os.close(tracker._fd)  # the child's copy; the parent keeps its own
        tracker._fd = tracker._pid = None


def _track(path: str) -> None:
    """Have loky's resource tracker remove ``path`` if this process dies without doing it.

    The tracker is a process of its own; it removes what is still registered
    once every process holding its pipe (this one and its workers) is gone.
    """
    with contextlib.suppress(Exception):  # no tracker (loky missing): exit still cleans up
        from loky.backend import resource_tracker

        resource_tracker.register(path, "folder")


def _remove_folder(path: str, owner: int) -> None:
    if os.getpid() != owner:  # a forked child runs its parent's atexit handlers too
        return
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(Exception):
        from loky.backend import resource_tracker

        resource_tracker.unregister(path, "folder")


def worker_tag(pool: int) -> str:
    """The start of the names of the files of pool ``pool``'s workers."""
    return f"w{pool}-"


def marker_name(tag: str, pid: int) -> str:
    """The name of the marker of worker ``pid`` (its files start with ``tag``)."""
    return f"{tag}{pid}-task"


def worker_of(name: str) -> tuple[int, int] | None:
    """(pool, pid) of the worker that wrote the file ``name``; None for the parent's files."""
    if not name.startswith("w"):
        return None
    pool, _, rest = name[1:].partition("-")
    pid = rest.partition("-")[0]
    if not (pool.isdigit() and pid.isdigit()):
        return None
    return int(pool), int(pid)


def _read_marker(path: str) -> tuple[int, str] | None:
    """(token, key) noted in a marker; None if it notes no task."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if len(data) < MARKER.size:
        return None
    size, token = MARKER.unpack_from(data)
    if not size:
        return None
    return token, data[MARKER.size : MARKER.size + size].decode("utf-8", "replace")


def dead_workers_tasks(directory: str) -> list[str]:
    """Keys noted by worker processes that are dead now (their notes are removed)."""
    keys: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return keys
    for name in names:
        owner = worker_of(name)
        if owner is None or not name.endswith("-task") or not _is_dead(owner[1]):
            continue
        path = os.path.join(directory, name)
        noted = _read_marker(path)
        with contextlib.suppress(OSError):
            os.unlink(path)
        if noted is not None:
            keys.append(noted[1])
    return keys


def runs_of_dead_workers(directory: str, pool: int, pids: list[int]) -> dict[int, int]:
    """The tokens of the runs whose tasks the workers ``pids`` of pool ``pool`` ran, by pid.

    Reads their markers and leaves them in place.
    """
    tag = worker_tag(pool)
    runs: dict[int, int] = {}
    for pid in pids:
        noted = _read_marker(os.path.join(directory, marker_name(tag, pid)))
        if noted is not None:
            runs[pid] = noted[0]
    return runs


def sweep(directory: str, pool: int, keep: frozenset[int] = frozenset()) -> None:
    """Remove what the dead workers of pool ``pool`` left: values, partial files, markers.

    Values no :class:`~tarry._schedule.transfer.Spilled` of this process
    refers to (never handed over: the worker was stopped while it wrote or
    sent them), and the markers, but those of the workers in ``keep``: a
    run reads them (see :func:`dead_workers_tasks`). Call it once the pool's
    results have all been received (its loky manager thread has ended).
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        owner = worker_of(name)
        if owner is None or owner[0] != pool or not _is_dead(owner[1]):
            continue
        path = os.path.join(directory, name)
        if name.endswith("-task") and owner[1] in keep:
            continue
        if not in_use(path):
            with contextlib.suppress(OSError):
                os.unlink(path)


def _is_dead(pid: int) -> bool:
    return gone(pid)  # a zombie is dead, just not reaped yet


def _after_fork_in_child() -> None:
    global _lock, _tracker_inherited
    # another thread of the parent may have held it at the fork
    _lock = threading.RLock()
    _tracker_inherited = True


if hasattr(os, "register_at_fork"):  # Windows has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)

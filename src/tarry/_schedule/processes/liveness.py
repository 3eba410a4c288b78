"""Whether a process is alive, asked the same way on every system (psutil).

The pool asks it of workers whose markers it finds (a dead worker's task
is named in the error; see :mod:`~tarry._schedule.processes.markers`), and
each worker asks it of its parent (a worker whose parent died exits; see
:mod:`~tarry._schedule.processes.worker`). A zombie (dead, not reaped yet)
counts as dead. Windows has no zombies, and never gives an orphan a new
parent, so a worker there cannot tell its parent's death by its parent's
pid changing, as on POSIX: it asks psutil, which also knows a pid reused by
a new process from the one it was.

Examples
--------
>>> import os, subprocess, sys
>>> gone(os.getpid())
False
>>> child = subprocess.Popen([sys.executable, "-c", "pass"])
>>> _ = child.wait()
>>> gone(child.pid)
True
>>> parent_alive = watch_parent(os.getppid())
>>> parent_alive()
True
"""

from __future__ import annotations

import os
from collections.abc import Callable

from tarry import _platform

__all__ = ["gone", "watch_parent"]


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (exited, killed, or a zombie)."""
    import psutil

    try:
        return psutil.Process(pid).status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # it exists, but we may not look at it
        return False


def watch_parent(parent: int) -> Callable[[], bool]:
    """A check that ``parent``, this process's parent now, is still alive: cheap enough for
    every half second (one ``getppid`` call on POSIX, a look at the process elsewhere)."""
    if _platform.reparents_orphans():
        # an orphan gets a new parent at once, even while the dead one is a zombie
        return lambda: os.getppid() == parent
    import psutil

    try:
        process = psutil.Process(parent)
    except psutil.NoSuchProcess:
        return lambda: False

    def alive() -> bool:
        try:  # is_running: the same process, not a new one that got its pid
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:  # it exists, but we may not look at it
            return True

    return alive

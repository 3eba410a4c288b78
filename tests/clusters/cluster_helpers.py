"""Functions the cluster tests run in worker or scheduler processes.

Importable there: :mod:`cli` puts this folder on the path of every process
a cluster starts. Scenario scripts import it as ``clusters.cluster_helpers``
(the tests folder is on their path).
"""

from __future__ import annotations

import os
import resource
import signal
import threading
import time
from pathlib import Path
from typing import Any


def nap_first_time(folder: str, seconds: float) -> int:
    """Nap ``seconds`` the first time (noting ``<pid>.started`` in ``folder``); return the pid.

    A later call, a retry after the first napper was killed, returns at once.
    """
    if any(Path(folder).glob("*.started")):
        return os.getpid()
    Path(folder, f"{os.getpid()}.started").touch()
    time.sleep(seconds)
    return os.getpid()


def kill_first_napper(folder: str) -> threading.Thread:
    """Start a thread that SIGKILLs the worker process of :func:`nap_first_time` in ``folder``.

    Run in a scenario (the driver), not in a worker; join it after the compute.
    """
    return kill_once_noted(folder)


def kill_once_noted(folder: str, pid: int | None = None, group: bool = False) -> threading.Thread:
    """Start a thread that, once a task has noted its pid in ``folder``, SIGKILLs
    process ``pid`` (its process group with ``group``), or that task's process
    when ``pid`` is None.

    Run in a scenario (the driver), not in a worker; join it after the compute.
    """
    from remote_helpers import pids_noted, wait_for  # the tests folder: the driver's path only

    def kill() -> None:
        assert wait_for(lambda: bool(pids_noted(Path(folder))), 120)
        victim = pids_noted(Path(folder))[0] if pid is None else pid
        (os.killpg if group else os.kill)(victim, signal.SIGKILL)

    killer = threading.Thread(target=kill)
    killer.start()
    return killer


def peak_rss(dask_scheduler: Any = None) -> int:
    """The highest resident memory this process has had, in bytes (Linux counts in KiB).

    ``dask_scheduler`` is there for ``Client.run_on_scheduler``, which passes it.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def nbytes(array: Any, extra: int = 0) -> int:
    """The size of ``array`` in bytes, plus ``extra`` (distinct calls read the same array)."""
    return int(array.nbytes) + extra

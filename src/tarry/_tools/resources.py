"""CPU and memory use of this process and its descendants, sampled on a thread.

Descendants count because the process-based backends (local process pools,
a local Ray or Dask cluster) do the work in child processes. Readings come
from psutil, on every system: CPU time and resident memory of each
process. Finding the descendants is the one Linux fast path: psutil
finds a process's children by reading the parent of every process of the
machine (1.9 ms with 110 processes on the development machine, more on a
desktop), where Linux lists a process's children itself (24 µs:
``/proc/PID/task/TID/children``). Measured with::

    python -m timeit -s "import psutil; p = psutil.Process()" "p.children(recursive=True)"
    python -m timeit -s "from tarry._tools.resources import descendants" "descendants()"
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tarry import _platform

if TYPE_CHECKING:
    import psutil

__all__ = ["ResourceSample", "Sampler", "descendants"]


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """One reading of CPU and memory use.

    ``time`` is a perf_counter reading; ``cpu_percent`` the CPU used since the
    previous reading, in % of one core (200 means two cores busy);
    ``memory`` the resident bytes.
    """

    time: float
    #: NaN for the first reading of a run (a rate needs two readings)
    cpu_percent: float
    memory: float


def descendants() -> list[int]:
    """Process ids of this process's children, grandchildren, ...

    Examples
    --------
    >>> import subprocess, sys
    >>> child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    >>> child.pid in descendants()
    True
    >>> child.kill(); _ = child.wait()
    """
    if not _platform.proc_children():
        import psutil

        try:
            return [p.pid for p in psutil.Process().children(recursive=True)]
        except psutil.Error:
            return []
    found: list[int] = []
    stack = _proc_children(os.getpid())
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(_proc_children(pid))
    return found


def _proc_children(pid: int) -> list[int]:
    """Direct children of ``pid``, as Linux lists them per thread (see the module doc)."""
    kids: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:  # it ended meanwhile
        return kids
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(k) for k in f.read().split())
        except (OSError, ValueError):
            continue
    return kids


class Sampler:
    """A thread appending a :class:`ResourceSample` to ``samples`` every ``interval`` s.

    Examples
    --------
    >>> samples: list[ResourceSample] = []
    >>> sampler = Sampler(samples, interval=0.01)
    >>> sampler.start(); time.sleep(0.05); sampler.stop()
    >>> len(samples) >= 2, samples[-1].cpu_percent >= 0, samples[-1].memory > 0
    (True, True, True)
    """

    def __init__(self, samples: list[ResourceSample], interval: float = 0.05) -> None:
        self.samples = samples
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: (perf_counter, CPU seconds of this process, CPU seconds per child) at the last reading
        self._last: tuple[float, float, dict[int, float]] | None = None
        self._family: list[int] = []
        self._family_age = 0
        #: the descendants there were when the run began
        self._before: frozenset[int] = frozenset()
        #: psutil's handle of each descendant seen, kept: making one reads the process
        self._handles: dict[int, psutil.Process] = {}

    def start(self) -> None:
        """Take a first reading now and keep sampling on a daemon thread."""
        self._stop.clear()
        # CPU % is a rate between two readings: none across the gap between runs
        self._last = None
        self._family_age = 0
        self._sample()
        self._before = frozenset(self._family)
        self._thread = threading.Thread(target=self._loop, name="tarry-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and take a last reading, so the run's end is covered."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._family_age = 0
        self._sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _read(self) -> tuple[float, float, float, dict[int, float]]:
        """perf_counter, this process's CPU seconds, the memory of the family, and the CPU
        seconds of each descendant."""
        import psutil

        # the two clocks first and together: each reading below may wait for
        # the GIL when tasks are busy, which would skew a CPU rate
        cpu = time.process_time()
        now = time.perf_counter()
        try:
            memory = float(psutil.Process().memory_info().rss)
        except psutil.Error:
            memory = math.nan
        per_child: dict[int, float] = {}
        handles = self._handles
        for pid in self._family:
            try:
                handle = handles.get(pid) or handles.setdefault(pid, psutil.Process(pid))
                with handle.oneshot():
                    times = handle.cpu_times()
                    per_child[pid] = times.user + times.system
                    memory += handle.memory_info().rss
            except psutil.Error:  # it ended meanwhile
                handles.pop(pid, None)
        return now, cpu, memory, per_child

    def _sample(self) -> None:
        # finding descendants may read every process: not at every reading
        if self._family_age <= 0:
            self._family = descendants()
            self._family_age = max(1, round(0.2 / self.interval))
            for gone in self._handles.keys() - set(self._family):
                del self._handles[gone]
        self._family_age -= 1
        now, cpu, memory, children = self._read()
        last = self._last
        self._last = (now, cpu, children)
        if last is None:
            percent = math.nan
        else:
            then, last_cpu, last_children = last
            used = cpu - last_cpu
            for pid, child_cpu in children.items():
                if pid in last_children:
                    used += child_cpu - last_children[pid]
                elif pid not in self._before:
                    # a worker started during this run: all its CPU time is
                    # the run's, even the part used before we first saw it
                    used += child_cpu
                # else a reused process (a pool of an earlier run): its CPU
                # time so far is not this run's, so it counts from now on
            percent = 100.0 * max(used, 0.0) / (now - then) if now > then else 0.0
        self.samples.append(ResourceSample(now, percent, memory))

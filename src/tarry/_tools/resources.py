"""CPU and memory use of this process and its descendants, sampled on a thread.

Descendants count because the process-based backends (local process pools,
a local Ray or Dask cluster) do the work in child processes. Readings come
from ``/proc`` on Linux; elsewhere only this process's CPU time is known and
memory is reported as NaN. No third-party dependency.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass

__all__ = ["ResourceSample", "Sampler", "descendants", "read_usage"]

_TICK = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


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


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (empty when /proc cannot tell)."""
    kids: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(k) for k in f.read().split())
        except (OSError, ValueError):
            continue
    return kids


def _stat(pid: int) -> tuple[float, float, float] | None:
    """CPU seconds (user + system), resident bytes and start time (s since boot) of ``pid``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # the command name in parentheses may contain spaces: split after it
    fields = text[text.rfind(")") + 2 :].split()
    try:
        cpu = (int(fields[11]) + int(fields[12])) * _TICK
        started = int(fields[19]) * _TICK
        rss = int(fields[21]) * _PAGE
    except (IndexError, ValueError):
        return None
    return cpu, float(rss), started


def _memory(pid: int) -> float:
    """Resident bytes of ``pid`` (NaN without /proc)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return float(int(f.read().split()[1]) * _PAGE)
    except (OSError, ValueError, IndexError):
        return math.nan


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
    found: list[int] = []
    stack = _children(os.getpid())
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(_children(pid))
    return found


def _since_boot() -> float:
    """Seconds since boot, the clock of a process's start time in /proc."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):  # not on Linux
        return 0.0


def read_usage(
    children: list[int],
) -> tuple[float, float, float, dict[int, tuple[float, float]]]:
    """One reading of CPU and memory use.

    Returns perf_counter, this process's CPU seconds, the memory of this
    process and ``children`` (NaN without /proc), and per child its CPU
    seconds and start time (seconds since boot).

    Examples
    --------
    >>> now, cpu, memory, per_child = read_usage([])
    >>> cpu > 0, memory > 0, per_child
    (True, True, {})
    """
    # the two clocks first and together: each /proc read below may wait for
    # the GIL when tasks are busy, which would skew a CPU rate
    cpu = time.process_time()
    now = time.perf_counter()
    memory = _memory(os.getpid())
    per_child: dict[int, tuple[float, float]] = {}
    for pid in children:
        stat = _stat(pid)
        if stat is not None:
            per_child[pid] = (stat[0], stat[2])
            memory += stat[1]
    return now, cpu, memory, per_child


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
        self._last: tuple[float, float, dict[int, tuple[float, float]]] | None = None
        self._family: list[int] = []
        self._family_age = 0
        self._began = 0.0

    def start(self) -> None:
        """Take a first reading now and keep sampling on a daemon thread."""
        self._stop.clear()
        # CPU % is a rate between two readings: none across the gap between runs
        self._last = None
        self._family_age = 0
        self._began = _since_boot()
        self._sample()
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

    def _sample(self) -> None:
        # finding descendants reads a file per thread: not at every reading
        if self._family_age <= 0:
            self._family = descendants()
            self._family_age = max(1, round(0.2 / self.interval))
        self._family_age -= 1
        now, cpu, memory, children = read_usage(self._family)
        last = self._last
        self._last = (now, cpu, children)
        if last is None:
            percent = math.nan
        else:
            then, last_cpu, last_children = last
            used = cpu - last_cpu
            for pid, (child_cpu, started) in children.items():
                if pid in last_children:
                    used += child_cpu - last_children[pid][0]
                elif started >= self._began - 2 * _TICK:
                    # a worker started during this run: all its CPU time is
                    # the run's, even the part used before we first saw it
                    used += child_cpu
                # else a reused process (a pool of an earlier run): its CPU
                # time so far is not this run's, so it counts from now on
            percent = 100.0 * max(used, 0.0) / (now - then) if now > then else 0.0
        self.samples.append(ResourceSample(now, percent, memory))

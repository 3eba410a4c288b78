"""How many cores the threads of this process want: what lets the threads backend grow.

The threads backend adds threads beyond one per CPU while its tasks wait
(sleep, I/O, C code without the GIL), and never for tasks that compute
(see :class:`~tarry._schedule.threads._Recruiter`). What tells the two
apart is the CPU demand of the process, measured one of two ways:

* **runnable threads** (Linux): the threads of this process that are
  running or waiting for a core, from their state (``R``) in
  ``/proc/self/task/*/stat``. It does not depend on what else the machine
  runs: a thread that computes counts even while another process holds
  the core it wants.
* **CPU time and the GIL** (macOS, Windows, and Linux in portable mode, see
  :mod:`tarry._platform`): the CPU time the process used per second of
  wall time over the last :data:`WINDOW` (two clock readings, about 1 µs),
  and whether a thread holds the GIL. A thread waiting for a core that
  another process holds uses no CPU time, so on a busy machine tasks that
  compute would look partly waiting; but a task computing in Python holds
  the GIL, and the recruiter, which needs the GIL to wake up, then wakes
  late by about the GIL's switch interval (5 ms) instead of 0.1 ms. While
  one in :data:`GIL_LATE` of its last :data:`GIL_WAKES` wake-ups is late
  by half that interval and the process uses CPU time at all
  (:data:`GIL_BUSY`), the demand counts at least one core. With the load
  average at 6 on the 2-core development machine, its wake-ups were late
  by a median of 0.1 ms with eight threads sleeping or two hashing without
  the GIL, and 6.1-6.5 ms with one or two threads computing in Python.

  What remains unseen: C code that computes without the GIL looks partly
  waiting when other programs take its cores; and on a machine so busy
  that threads computing in Python get under a tenth of a core (a load
  average of 11 on 2 cores did that), they look like threads that wait,
  and the run may grow. The runnable-thread count sees both. That is why
  the Linux way stays where it exists, and why the tests of computing
  tasks run only that way on the shared test machine.

Examples
--------
>>> demand = Demand(runnable=False)
>>> began = cpu_reading()
>>> time.sleep(0.01)
>>> for _ in range(MIN_WAKES):
...     demand.read(needed=True, late=0.0)
>>> 0.0 <= demand.since(began) < 64
True
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque

from tarry import _platform

__all__ = [
    "GIL_BUSY",
    "GIL_LATE",
    "GIL_WAKES",
    "MIN_WAKES",
    "SAMPLE_GAP",
    "WINDOW",
    "Demand",
    "Reading",
    "cpu_reading",
]

#: seconds over which the CPU-time measure averages: several of the
#: recruiter's looks, so that a coarse CPU clock (Windows counts CPU time in
#: 15.6 ms ticks) and the moment one thread hands the GIL to another average out
WINDOW = 0.05
#: seconds between the two samples of the runnable-threads measure: a single
#: sample may fall between two threads handing over the GIL
SAMPLE_GAP = 0.002

#: a thread holds the GIL when at least one in this many of the recruiter's
#: last :data:`GIL_WAKES` wake-ups came late by half the GIL's switch
#: interval: a wake-up may fall on a moment the GIL changes hands, or its
#: holder waits for a core (measured over 200 wake-ups at a load average of
#: 8 on 2 cores: 80% late with two threads computing in Python, 100% with
#: one; 2% with eight threads sleeping, none idle)
GIL_LATE = 3
#: wake-ups the GIL rule looks at: about 0.1 s of looks
GIL_WAKES = 8
#: ... and it holds only while the process uses this much of a core: a
#: thread that computes does, even on a machine so busy that it gets a tenth
#: of a core; late wake-ups without it are that machine's own delays (the
#: tutorial's eight sleeps once ran on two threads for 2.4 s without this)
GIL_BUSY = 0.1
#: wake-ups of the reader after a run began before its demand is known: at
#: the first look the run's first task may not have begun yet, and with
#: three, all on time by chance while a thread computes is rare (1% at 80%)
MIN_WAKES = 3

#: (wall-clock seconds, CPU seconds of this process), both from arbitrary origins
Reading = tuple[float, float]


def cpu_reading() -> Reading:
    """The time, and the CPU time this process has used so far."""
    return time.perf_counter(), time.process_time()


class Demand:
    """The cores this process's threads want, as one thread (the recruiter) reads it.

    ``runnable``: count runnable threads (``/proc``, Linux only) rather than
    measure CPU time and the GIL; by default, wherever the system allows it.
    """

    def __init__(self, window: float = WINDOW, runnable: bool | None = None) -> None:
        self.window = window
        self.runnable = _platform.thread_states() if runnable is None else runnable
        #: CPU readings over the window
        self.readings: deque[Reading] = deque([cpu_reading()])
        #: the last wake-ups: when, and how late
        self.wakes: deque[tuple[float, float]] = deque(maxlen=GIL_WAKES)
        #: the last count of runnable threads
        self.count = 0.0

    def read(self, needed: bool, late: float) -> None:
        """Take a reading now; ``late``: by how much the reader's last sleep overran.

        The runnable threads are counted only if ``needed``: that reads a
        file per thread, which with many threads and a task holding the GIL
        can take longer than the tasks themselves.
        """
        if self.runnable:
            self.count = 0.0
            if needed:
                own = threading.get_native_id()
                first = _runnable_threads(own)
                time.sleep(SAMPLE_GAP)
                self.count = (first + _runnable_threads(own)) / 2
            return
        readings = self.readings
        readings.append(cpu_reading())
        now = readings[-1][0]
        self.wakes.append((now, late))
        # the oldest reading kept is the newest one at least a window old
        while len(readings) > 2 and readings[1][0] <= now - self.window:
            readings.popleft()

    def since(self, began: Reading) -> float | None:
        """Cores wanted at the last reading; CPU time: from the window's start or ``began``.

        ``began`` is :func:`cpu_reading` when a run began to be watched: its
        demand never includes the quiet time before it. None until the
        reader has woken :data:`MIN_WAKES` times since then.
        """
        if self.runnable:
            return self.count
        first = max(self.readings[0], began)
        now, cpu = self.readings[-1]
        used = max(0.0, cpu - first[1]) / (now - first[0]) if now > first[0] else 0.0
        wakes = [late for at, late in self.wakes if at > began[0]]
        if len(wakes) < MIN_WAKES:
            return None
        late = sum(w > sys.getswitchinterval() / 2 for w in wakes)
        if late * GIL_LATE >= len(wakes) and used >= GIL_BUSY:
            return max(used, 1.0)  # a thread holds the GIL: it wants a core
        return used


def _runnable_threads(own_tid: int) -> float:
    """Threads of this process (but ``own_tid``) that are running or runnable."""
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:  # /proc went away (unmounted): take the threads as busy
        return float("inf")
    count = 0
    for tid in tids:
        if tid == str(own_tid):
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread ended meanwhile
            continue
        # the state follows the command name, which may contain ") "
        if stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] == b"R":
            count += 1
    return float(count)

"""The ``"threads"`` backend: the caller and pool threads share one run.

Who runs what:

* the thread that called ``compute()`` runs tasks itself, and waits only when
  nothing is ready; so a one-task graph costs no thread hop, a ``compute()``
  nested in a task always makes progress (no deadlock), and Ctrl-C lands in
  the caller at once;
* *helpers* from a :class:`WorkerPool` join in when tasks queue up and are
  not tiny (see :class:`_Recruiter`): first up to ``num_workers - 1``, then,
  without an explicit ``num_workers``, more while the threads mostly wait. A
  helper takes ready tasks until none is left, then returns to the pool.
  Tiny tasks stay on the caller alone: under the GIL a second thread would
  only add lock traffic.

Lifetimes: one process-wide default pool is started on first use; its daemon
threads retire after ``idle_timeout`` seconds without work, and
:func:`shutdown_default_pool` (also run at exit) stops them at once. Nested and
concurrent computes share it, so nesting never starts a new pool. The
recruiter's thread lives only while some run has tasks waiting.
"""

from __future__ import annotations

import atexit
import itertools
import os
import queue
import threading
import time
from collections.abc import Callable

from tarry._graph import Task
from tarry._schedule import DEFAULTS, Settings
from tarry._schedule.core import Run
from tarry._schedule.cpus import usable_cpus
from tarry._schedule.sync import run_sync

__all__ = ["WorkerPool", "default_pool", "run_threads", "shutdown_default_pool"]

#: seconds the waiting caller sleeps between checks; bounds Ctrl-C latency
#: on platforms where a signal does not interrupt a lock wait
_WAIT_SLICE = 0.2
#: seconds between two looks of the recruiter: short against the tutorial's
#: 1 s sleeps (helpers join within 1% of a task), long against the ~20 µs a
#: look at /proc costs
LOOK_INTERVAL = 0.01
#: seconds between the two CPU samples of one look: a single sample may fall
#: between two threads handing over the GIL
SAMPLE_GAP = 0.002
#: weight of a new CPU-demand sample in a run's smoothed demand: one look may
#: fall between two bursts of a task (0.2 smooths over about 5 looks)
DEMAND_WEIGHT = 0.2
#: a run grows past its base while its busy threads demand less than this
#: share of a CPU each: they mostly wait (sleep, I/O, GIL-free C code)
WAITING_SHARE = 0.5
#: ... and while this much of a core is free: growth must not starve others
FREE_CORE = 0.25


class WorkerPool:
    """Daemon threads that run submitted jobs; started on demand, retired when idle.

    Parameters
    ----------
    max_threads
        Upper bound on live threads; further jobs queue up.
    idle_timeout
        Seconds a thread waits for a job before it exits.

    Examples
    --------
    >>> pool = WorkerPool(max_threads=2)
    >>> done = threading.Event()
    >>> pool.submit(done.set)
    >>> done.wait(5)
    True
    >>> pool.shutdown()
    >>> pool.thread_count()
    0
    """

    def __init__(self, max_threads: int, idle_timeout: float = 5.0) -> None:
        self.max_threads = max_threads
        self.idle_timeout = idle_timeout
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        # one token per idle thread: a submitter that takes one knows a
        # thread will pick its job up; otherwise it starts a thread.
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._names = itertools.count()
        self._closed = False

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job()`` on a pool thread. ``job`` must not raise."""
        if self._closed:
            raise RuntimeError("this WorkerPool has been shut down")
        self._jobs.put(job)
        if self._idle.acquire(blocking=False):
            return
        with self._lock:
            if len(self._threads) < self.max_threads:
                thread = threading.Thread(
                    target=self._work, name=f"tarry-worker-{next(self._names)}", daemon=True
                )
                self._threads.add(thread)
                thread.start()

    def thread_count(self) -> int:
        """Number of live pool threads."""
        with self._lock:
            return len(self._threads)

    def _work(self) -> None:
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=self.idle_timeout)
                except queue.Empty:
                    if self._idle.acquire(blocking=False):
                        return
                    continue  # a submitter took our token: its job is on the way
                if job is None:
                    return
                job()
                self._idle.release()
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every thread once its current job is done (waits up to ``timeout``)."""
        self._closed = True
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)


_default: WorkerPool | None = None
_default_lock = threading.Lock()


def default_pool() -> WorkerPool:
    """The process-wide pool shared by every threaded compute (started lazily)."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = WorkerPool(max_threads=max(32, 4 * usable_cpus()))
        return _default


def shutdown_default_pool() -> None:
    """Stop the default pool's threads now; the next compute starts a new pool."""
    global _default
    with _default_lock:
        pool, _default = _default, None
    if pool is not None:
        pool.shutdown()


atexit.register(shutdown_default_pool)


def run_threads(run: Run, settings: Settings = DEFAULTS) -> BaseException | None:
    """Run ``run`` on the caller plus pool threads; return the first task error.

    With ``settings.num_workers`` given, at most that many threads work on
    the run. Without it, up to one thread per usable CPU, and more while the
    threads mostly wait (sleep, I/O, C code without the GIL) and ready tasks
    queue up, up to ``settings.max_threads``. See :class:`_Recruiter` for
    when helpers join.
    """
    num_workers = settings.num_workers
    adaptive = num_workers is None
    workers = usable_cpus() if num_workers is None else num_workers
    if run.remaining <= 1 or (workers == 1 and not adaptive):
        return run_sync(run)
    cap = max(workers, settings.max_threads) if adaptive else workers
    return _SharedRun(run, default_pool(), workers - 1, cap - 1).drive()


class _Recruiter:
    """One daemon thread that brings helpers to runs that can use them.

    Every ``interval`` seconds it looks at each run with ready tasks waiting:

    * if its busy threads finished fewer than ``_TINY`` tasks each since the
      last look, tasks are not tiny: the run gets helpers up to its base
      number (``num_workers - 1``). Tiny tasks stay on one thread, where
      they run fastest under the GIL. Without an explicit ``num_workers``,
      tasks that each keep more than one core busy (libraries with threads
      of their own) get only as many threads as the cores can feed;
    * beyond the base, a run grows (up to its cap) while its busy threads
      demand less than half a CPU each and a quarter of a core is free. CPU
      demand counts this process's threads that are running or runnable
      (state ``R`` in ``/proc``); a thread blocked in sleep, I/O, a lock or
      waiting for the GIL does not count, whatever else the machine runs. So
      tasks that wait overlap, and tasks that compute never trigger growth.

    The thread exits when no run needs watching, so nothing lingers.
    """

    interval = LOOK_INTERVAL

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: set[_SharedRun] = set()
        self._thread: threading.Thread | None = None

    def watch(self, shared: _SharedRun) -> None:
        with self._lock:
            self._runs.add(shared)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="tarry-recruiter", daemon=True
                )
                self._thread.start()

    def unwatch(self, shared: _SharedRun) -> None:
        with self._lock:
            self._runs.discard(shared)

    def _loop(self) -> None:
        cores = usable_cpus()
        own = threading.get_native_id()
        while True:
            time.sleep(self.interval)
            with self._lock:
                if not self._runs:
                    self._thread = None
                    return
                runs = list(self._runs)
            demand = 0.0
            # Only a run that may grow past its base needs the CPU demand,
            # which reads a file per thread: with many threads and a task
            # holding the GIL, that can take longer than the tasks themselves.
            if any(shared.cap > shared.base for shared in runs):
                # two samples: one alone may catch the GIL between two holders
                demand = _cpu_demand(own)
                time.sleep(SAMPLE_GAP)
                demand = (demand + _cpu_demand(own)) / 2
            for shared in runs:
                shared.recruit(demand, cores)


#: tasks per busy thread and look (10 ms) above which tasks count as tiny
#: (shorter than about 1 ms each): found with benchmarks/bench_limits.py's
#: tiny-task section, where a second thread only adds lock traffic
_TINY = 10


def _cpu_demand(own_tid: int) -> float:
    """Threads of this process (but ``own_tid``) that are running or runnable."""
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:  # no /proc: assume busy, so never grow
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
        if stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] == b"R":
            count += 1
    return float(count)


_recruiter = _Recruiter()


class _SharedRun:
    """One run worked on by its caller and by helpers, under one lock."""

    def __init__(self, run: Run, pool: WorkerPool, base: int, cap: int) -> None:
        self.run = run
        self.pool = pool
        #: helpers allowed now; raised by the recruiter
        self.max_helpers = 0
        #: helpers allowed once tasks prove not tiny (num_workers - 1)
        self.base = base
        #: the most helpers growth may reach (== base: no growth)
        self.cap = cap
        #: the task the caller runs now, if any
        self.caller_task: Task | None = None
        self.last_remaining = run.remaining
        #: CPU demand seen by the recruiter while this run had tasks waiting
        self.demand: float | None = None
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.helpers = 0
        self.caller_waiting = False
        self.stopped = False
        self.error: BaseException | None = None

    def _claim_helpers(self) -> int:
        """Helpers to start for the tasks now ready (called under the lock)."""
        room = self.max_helpers - self.helpers
        if room <= 0:
            return 0
        wanted = min(self.run.pending(), room)
        if not wanted:
            return 0
        self.helpers += wanted
        # Holding roots back (see core.Run) matters once tasks run side by
        # side; its bookkeeping would only slow down a caller running alone.
        # From now on it needs to know what runs, the caller's task too.
        self.run.hold_back(self.caller_task)
        return wanted

    def recruit(self, demand: float, cores: int) -> None:
        """Allow and start helpers as :class:`_Recruiter` explains."""
        with self.lock:
            run = self.run
            finished = self.last_remaining - run.remaining
            self.last_remaining = run.remaining
            busy = self.helpers + (self.caller_task is not None)
            if self.stopped or not run.pending() or finished >= _TINY * max(1, busy):
                return
            # smoothed per run: one look may fall between two of a task's bursts
            old = self.demand
            self.demand = demand if old is None else old + DEMAND_WEIGHT * (demand - old)
            base = self.base
            if self.cap > base and busy and self.demand > busy:
                # adaptive run whose tasks each keep more than a core busy
                # (pandas and NumPy run threads of their own): only as many
                # threads as the cores can feed
                base = min(base, max(0, int(cores * busy / self.demand) - 1))
            self.max_helpers = max(self.max_helpers, base)
            grow = demand < WAITING_SHARE * busy and demand < cores - FREE_CORE
            if self.max_helpers < self.cap and grow:
                # threads that all wait: a thread for every ready task at
                # once; some computing: double at most. No step back is
                # needed since idle helpers simply leave.
                step = run.pending() if demand < FREE_CORE else max(1, busy)
                self.max_helpers = min(self.cap, self.max_helpers + step)
            spawn = self._claim_helpers()
        self._start_helpers(spawn)

    def _start_helpers(self, count: int) -> None:
        for _ in range(count):
            self.pool.submit(self.help)

    def _fail(self, exc: BaseException, task: Task) -> None:
        """Record the first failure and stop handing out tasks (under the lock)."""
        if self.error is None:
            self.error = self.run.fail(task, exc)
        self.stopped = True
        self.changed.notify_all()

    def drive(self) -> BaseException | None:
        """The caller's loop: run tasks, wait when none is ready, return at the end."""
        run, lock = self.run, self.lock
        values, call = run.values, run.runner()
        task: Task | None = None
        value: object = None
        watched = False
        try:
            while True:
                with lock:
                    self.caller_task = None
                    if task is not None:
                        run.finish(task, value)
                    while True:
                        if self.stopped:
                            return self.error
                        if not run.remaining:
                            return None
                        task = run.pop()
                        if task is not None:
                            break
                        self.caller_waiting = True
                        self.changed.wait(_WAIT_SLICE)
                        self.caller_waiting = False
                    self.caller_task = task
                    spawn = self._claim_helpers()
                    backlog = bool(run.ready or run.later)
                if spawn:
                    self._start_helpers(spawn)
                if backlog and not watched and self.cap:
                    _recruiter.watch(self)
                    watched = True
                try:
                    value = call(task, values)
                except Exception as exc:
                    with lock:
                        self._fail(exc, task)
                        return self.error
        except BaseException:
            # KeyboardInterrupt or SystemExit in the caller: start nothing more.
            with lock:
                self.stopped = True
            raise
        finally:
            if watched:
                _recruiter.unwatch(self)

    def help(self) -> None:
        """A helper's loop, run on a pool thread: take ready tasks until none is left."""
        run, lock = self.run, self.lock
        values, call = run.values, run.runner()
        task: Task | None = None
        value: object = None
        while True:
            with lock:
                if task is not None:
                    run.finish(task, value)
                task = None if self.stopped else run.pop()
                if task is None:
                    self.helpers -= 1
                    if self.caller_waiting and not run.remaining:
                        self.changed.notify()
                    return
                if self.caller_waiting and (run.pending() or not run.remaining):
                    self.changed.notify()
                spawn = self._claim_helpers()
            if spawn:
                self._start_helpers(spawn)
            try:
                value = call(task, values)
            except BaseException as exc:
                with lock:
                    self._fail(exc, task)
                    self.helpers -= 1
                return

"""The ``"threads"`` backend: helpers run the tasks, the caller waits for the first error.

Who runs what:

* tasks that may run side by side run on *helpers*, threads borrowed from
  the shared :class:`~tarry._schedule.threadpool.WorkerPool`, while the
  thread that called ``compute()`` waits. So the first failure, Ctrl-C and
  the deadline of ``timeout=`` reach the caller at once, whatever the
  helpers still run (their running tasks are abandoned: a thread cannot be
  stopped). One helper takes over first (one thread hop per compute); more
  join when tasks prove not tiny (see :class:`_Recruiter`): up to
  ``num_workers``, then, without an explicit ``num_workers``, more while the
  threads mostly wait. Tiny tasks stay on one thread: under the GIL a
  second one would only add lock traffic.
* the caller runs a task itself when no other could run beside it (a graph
  of one task, a chain: no thread hop, and no other task to fail
  meanwhile), and when the pool has no thread to give (all of them busy, as
  in deeply nested computes, or the system refuses a new thread): so a
  ``compute()`` nested in a task always makes progress. Helpers that join
  then take over at the caller's next task; until it ends, an error
  elsewhere waits for it. With ``timeout=`` the caller hands every task
  over, when the pool lets it.

The recruiter's thread lives only while some run has tasks waiting.
"""

from __future__ import annotations

import threading
import time

from tarry._graph import Task
from tarry._schedule import DEFAULTS, Settings
from tarry._schedule.core import Run
from tarry._schedule.cpus import usable_cpus
from tarry._schedule.deadline import Deadline
from tarry._schedule.demand import Demand, Reading, cpu_reading
from tarry._schedule.sync import run_sync
from tarry._schedule.threadpool import WorkerPool, default_pool, shutdown_default_pool

__all__ = ["WorkerPool", "default_pool", "run_threads", "shutdown_default_pool"]

#: seconds the waiting caller sleeps between checks; bounds Ctrl-C latency
#: on platforms where a signal does not interrupt a lock wait
_WAIT_SLICE = 0.2
#: seconds between two looks of the recruiter: short against the tutorial's
#: 1 s sleeps (helpers join within 1% of a task), long against what a
#: reading of the CPU demand costs (see demand.py)
LOOK_INTERVAL = 0.01
#: weight of a new CPU-demand sample in a run's smoothed demand: one look may
#: fall between two bursts of a task (0.2 smooths over about 5 looks)
DEMAND_WEIGHT = 0.2
#: a run grows past its base while its busy threads demand less than this
#: share of a CPU each: they mostly wait (sleep, I/O, GIL-free C code)
WAITING_SHARE = 0.5
#: ... and while this much of a core is free: growth must not starve others
FREE_CORE = 0.25
#: ... and while the process keeps less than this share of one core busy:
#: Python code runs on one core at a time (the GIL), so tasks that compute
#: under it keep the process at about one core however many threads they
#: have (a median of 1.0 over 50 ms windows with 1 to 4 of them, measured
#: with the CPU-time measure of demand.py), and past this share more
#: threads would only queue for it
GIL_SHARE = 0.75
#: what a timeout error says of the tasks helpers were running
_ABANDONED = "left to run on, results unused (a thread cannot be stopped)"


def run_threads(run: Run, settings: Settings = DEFAULTS) -> BaseException | None:
    """Run ``run`` on pool threads (and the caller); return the first task error.

    With ``settings.num_workers`` given, at most that many threads work on
    the run. Without it, up to one thread per usable CPU, and more while the
    threads mostly wait (sleep, I/O, C code without the GIL) and ready tasks
    queue up, up to ``settings.max_threads``. See :class:`_Recruiter` for
    when helpers join. ``settings.timeout``: at the deadline the run stops
    handing out tasks and returns a :class:`TimeoutError` at once; the
    tasks running then are abandoned.
    """
    num_workers = settings.num_workers
    adaptive = num_workers is None
    workers = usable_cpus() if num_workers is None else num_workers
    timeout = settings.timeout
    if timeout is None and (run.remaining <= 1 or (workers == 1 and not adaptive)):
        return run_sync(run)
    run.limit_cpus(workers)  # a task asking for CPUs holds that many workers
    cap = max(workers, settings.max_threads) if adaptive else workers
    deadline = None if timeout is None else Deadline(timeout)
    return _SharedRun(run, default_pool(), workers, cap, deadline).drive()


class _Recruiter:
    """One daemon thread that brings helpers to runs that can use them.

    Every ``interval`` seconds it looks at each run with ready tasks waiting:

    * if its busy threads finished fewer than ``_TINY`` tasks each since the
      last look, tasks are not tiny: the run gets helpers up to its base
      number (``num_workers``). Tiny tasks stay on one thread, where they
      run fastest under the GIL. Without an explicit ``num_workers``, tasks
      that each keep more than one core busy (libraries with threads of
      their own) get only as many threads as the cores can feed;
    * beyond the base, a run grows (up to its cap) while its busy threads
      demand less than half a CPU each, a quarter of a core is free, and
      the process keeps less than :data:`GIL_SHARE` of a core busy. CPU
      demand counts the cores this process's threads want (see
      :mod:`~tarry._schedule.demand`): a thread blocked in sleep, I/O, a
      lock or waiting for the GIL wants none. So tasks that wait overlap,
      and tasks that compute never trigger growth.

    The thread exits when no run needs watching, so nothing lingers. If it
    cannot start (the system's thread limit), runs ask again later.
    """

    interval = LOOK_INTERVAL

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: the runs looked at, each with the CPU reading when it began to be
        self._runs: dict[_SharedRun, Reading] = {}
        self._thread: threading.Thread | None = None

    def watch(self, shared: _SharedRun) -> bool:
        """Look at ``shared`` from now on; False if the thread that looks could not start."""
        with self._lock:
            self._runs[shared] = cpu_reading()
            if self._thread is None:
                thread = threading.Thread(target=self._loop, name="tarry-recruiter", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # "can't start new thread": asked again later
                    return False
                self._thread = thread
            return True

    def unwatch(self, shared: _SharedRun) -> None:
        with self._lock:
            self._runs.pop(shared, None)

    def _loop(self) -> None:
        cores = usable_cpus()
        demand = Demand()
        try:
            while True:
                asleep = time.perf_counter()
                time.sleep(self.interval)
                late = time.perf_counter() - asleep - self.interval
                with self._lock:
                    if not self._runs:
                        self._thread = None
                        return
                    runs = list(self._runs.items())
                # only a run that may grow past its base needs the demand
                demand.read(any(shared.cap > shared.base for shared, _ in runs), late)
                for shared, began in runs:
                    shared.recruit(demand.since(began), cores)
        except BaseException:
            # never expected; but a dead recruiter must not look alive, or
            # no run would grow again: the next watch() starts a new one
            with self._lock:
                self._thread = None
            raise


#: tasks per busy thread and look (10 ms) above which tasks count as tiny
#: (shorter than about 1 ms each): found with benchmarks/bench_limits.py's
#: tiny-task section, where a second thread only adds lock traffic
_TINY = 10


_recruiter = _Recruiter()


class _SharedRun:
    """One run worked on by helpers (and the caller when none can), under one lock.

    The caller and helpers never run tasks side by side unless the pool
    refused the caller a helper (see the module doc).
    """

    def __init__(
        self, run: Run, pool: WorkerPool, base: int, cap: int, deadline: Deadline | None
    ) -> None:
        self.run = run
        self.pool = pool
        #: helpers allowed now: the first one at once; raised by the recruiter
        self.max_helpers = 1
        #: helpers allowed once tasks prove not tiny (num_workers)
        self.base = base
        #: the most helpers growth may reach (== base: no growth)
        self.cap = cap
        self.deadline = deadline
        #: the task the caller runs now, if any
        self.caller_task: Task | None = None
        self.last_remaining = run.remaining
        #: CPU demand seen by the recruiter while this run had tasks waiting
        self.demand: float | None = None
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        #: helpers handed to pool threads and not gone yet
        self.helpers = 0
        #: per working helper, a one-item list holding the task it runs
        self.slots: list[list[Task | None]] = []
        self.caller_waiting = False
        #: tasks ran side by side (roots are held back since)
        self.side_by_side = False
        self.watched = False
        self.stopped = False
        self.error: BaseException | None = None

    def _claim_helpers(self) -> int:
        """Helpers to start for the tasks now ready (called under the lock)."""
        room = self.max_helpers - self.helpers - (self.caller_task is not None)
        if room <= 0:
            return 0
        wanted = min(self.run.pending(), room)
        if not wanted:
            return 0
        if self.helpers + wanted > 1 or self.caller_task is not None:
            self._hold_back()
        self.helpers += wanted
        return wanted

    def _hold_back(self) -> None:
        """Tasks are about to run side by side: hold roots back (see core.Run).

        Its bookkeeping would only slow down one thread running alone. The
        one task running so far (the caller's, or the first helper's) must
        be known to it.
        """
        if not self.side_by_side:
            self.side_by_side = True
            running = self.caller_task
            if running is None and self.slots:
                running = self.slots[0][0]
            self.run.hold_back(running)

    def _start_helpers(self, count: int) -> bool:
        """Hand ``count`` claimed helpers to the pool; whether it took any.

        Those it had no thread for are given back, and a waiting caller
        is woken: it may have to run tasks itself.
        """
        taken = 0
        while taken < count and self.pool.submit(self.help):
            taken += 1
        if taken < count:
            with self.lock:
                self.helpers -= count - taken
                if self.caller_waiting:
                    self.changed.notify()
        return taken > 0

    def recruit(self, demand: float | None, cores: int) -> None:
        """Allow and start helpers as :class:`_Recruiter` explains.

        ``demand`` None: not measured for this run yet (see
        :meth:`~tarry._schedule.demand.Demand.since`).
        """
        with self.lock:
            run = self.run
            finished = self.last_remaining - run.remaining
            self.last_remaining = run.remaining
            busy = self.helpers + (self.caller_task is not None)
            if self.stopped or not run.pending() or finished >= _TINY * max(1, busy):
                return
            if demand is None:  # not measured yet: its busy threads count as computing
                demand = float(busy)
            else:  # smoothed per run: one look may fall between two of a task's bursts
                old = self.demand
                self.demand = demand if old is None else old + DEMAND_WEIGHT * (demand - old)
            base = self.base
            if self.cap > base and busy and self.demand is not None and self.demand > busy:
                # adaptive run whose tasks each keep more than a core busy
                # (pandas and NumPy run threads of their own): only as many
                # threads as the cores can feed
                base = min(base, max(1, int(cores * busy / self.demand)))
            self.max_helpers = max(self.max_helpers, base)
            grow = (
                demand < WAITING_SHARE * busy and demand < cores - FREE_CORE and demand < GIL_SHARE
            )
            if self.max_helpers < self.cap and grow:
                # threads that all wait: a thread for every ready task at
                # once; some computing: double at most. No step back is
                # needed since idle helpers simply leave.
                step = run.pending() if demand < FREE_CORE else max(1, busy)
                self.max_helpers = min(self.cap, self.max_helpers + step)
            spawn = self._claim_helpers()
        self._start_helpers(spawn)

    def _fail(self, exc: BaseException, task: Task) -> bool:
        """``task`` raised ``exc``: whether that ends the run (under the lock).

        If the task has retries left it is ready again; otherwise the first
        failure is recorded and no more tasks are handed out.
        """
        if not self.stopped and self.run.retry(task, exc):
            self.changed.notify_all()
            return False
        if self.error is None:
            self.error = self.run.fail(task, exc)
        self.stopped = True
        self.changed.notify_all()
        return True

    def _time_up(self, deadline: Deadline) -> BaseException:
        """The deadline passed: stop, with an error naming the running tasks (under the lock)."""
        running = [task for (task,) in self.slots if task is not None]
        self.error = deadline.error(running, self.run.remaining - len(running), _ABANDONED)
        self.stopped = True
        return self.error

    def _runs_alone(self) -> bool:
        """Whether the caller may run the next task itself, with no thread hop.

        So it is when no other task could run beside it, and no deadline is
        set (the caller must be free to give up when time is up).
        """
        return self.deadline is None and self.run.pending() <= 1

    def _wait(self) -> None:
        """Wait until a helper says something changed, or a slice of time passed."""
        self.caller_waiting = True
        wait = _WAIT_SLICE
        if self.deadline is not None:
            wait = max(0.0, min(wait, self.deadline.left()))
        self.changed.wait(wait)
        self.caller_waiting = False
        if not self.watched and self.cap > 1:  # the recruiter could not start before
            self.watched = _recruiter.watch(self)

    def drive(self) -> BaseException | None:
        """The caller's loop: hand tasks over (or run them), wait, return at the end."""
        run, lock, deadline = self.run, self.lock, self.deadline
        values, call = run.values, run.runner()
        task: Task | None = None
        value: object = None
        refused = False  # the pool took no helper just now: the caller runs a task
        try:
            while True:
                spawn = 0
                with lock:
                    self.caller_task = None
                    if task is not None:
                        run.finish(task, value)
                        task = None
                    while True:
                        if self.stopped or not run.remaining:
                            return self.error
                        if deadline is not None and deadline.left() <= 0:
                            return self._time_up(deadline)
                        if not self.helpers:
                            if refused or self._runs_alone():
                                task = run.pop()
                                if task is not None:
                                    break
                            else:
                                spawn = self._claim_helpers()
                                if spawn:
                                    break
                        self._wait()
                    self.caller_task = task
                if task is None:  # helpers claimed: hand them to the pool
                    # watched first: if the pool has no thread for the caller
                    # now, the recruiter brings helpers while it runs a task
                    if not self.watched and self.cap > 1:
                        self.watched = _recruiter.watch(self)
                    refused = not self._start_helpers(spawn)
                    continue
                refused = False
                try:
                    value = call(task, values)
                except Exception as exc:
                    with lock:
                        if self._fail(exc, task):
                            return self.error
                    task = None  # it runs again
        except BaseException:
            # KeyboardInterrupt or SystemExit in the caller: start nothing more.
            with lock:
                self.stopped = True
            raise
        finally:
            if self.watched:
                _recruiter.unwatch(self)

    def help(self) -> None:
        """A helper's loop, run on a pool thread: take ready tasks until none is left."""
        run, lock = self.run, self.lock
        values, call = run.values, run.runner()
        slot: list[Task | None] = [None]
        task: Task | None = None
        value: object = None
        with lock:
            self.slots.append(slot)
        while True:
            with lock:
                if task is not None:
                    run.finish(task, value)
                task = None if self.stopped else run.pop()
                slot[0] = task
                if task is None:
                    self._leave(slot)
                    return
                spawn = self._claim_helpers()
            if spawn:
                self._start_helpers(spawn)
            try:
                value = call(task, values)
            except BaseException as exc:
                with lock:
                    if not self._fail(exc, task):
                        task = None  # it runs again
                        continue
                    self._leave(slot)
                # The error's traceback reaches this frame (the task's frame
                # calls back to it), and a caller may keep the error: the
                # frame must hold nothing of the run (see tracebacks.py).
                del self, run, values, call, task, value, exc
                return

    def _leave(self, slot: list[Task | None]) -> None:
        """A helper goes back to the pool; wake the caller if it must act (under the lock)."""
        self.slots.remove(slot)
        self.helpers -= 1
        if self.caller_waiting and (not self.helpers or not self.run.remaining):
            self.changed.notify()

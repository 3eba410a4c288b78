"""Running a graph through futures: the loop of every futures-based backend.

:class:`FutureDriver` is the loop common to backends that hand work to a
:class:`concurrent.futures.Executor`: submit what :meth:`Run.pop
<tarry._schedule.core.Run.pop>` gives, take completed futures from a queue,
feed :meth:`Run.finish <tarry._schedule.core.Run.finish>`, stop at the first
error, at Ctrl-C or at the deadline of ``timeout=``. :func:`run_executor`
drives it over any executor the user passes as ``scheduler=``, one task per
future; the ``"processes"`` backend builds on the same loop with batches of
fused tasks.

Examples
--------
>>> from concurrent.futures import ThreadPoolExecutor
>>> from tarry import compute, delayed
>>> with ThreadPoolExecutor(2) as pool:
...     compute(delayed(sum)([delayed(abs)(-1), 2]), scheduler=pool)
(3,)
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from functools import partial
from typing import Any

from tarry._graph import Task, call
from tarry._schedule import DEFAULTS, Settings, interrupts
from tarry._schedule.core import Run
from tarry._schedule.cpus import usable_cpus
from tarry._schedule.deadline import Deadline
from tarry._schedule.errors import Sent, receive, send
from tarry._schedule.sync import run_sync
from tarry._schedule.timing import Stopwatch, Timing
from tarry._schedule.wire import slim

__all__ = ["FutureDriver", "executor_backend", "run_executor"]


class FutureDriver:
    """The loop of a futures-based backend: submit, wait, finish, stop on the first error.

    Subclasses implement :meth:`submit_ready` (start what is ready, keeping
    each future with :meth:`track`) and :meth:`complete` (apply one finished
    future to the run). Completed futures arrive through a queue filled by
    done-callbacks, so waiting costs O(1) however many futures are pending.
    """

    #: seconds between checks while waiting; bounds Ctrl-C latency where a
    #: signal does not interrupt a lock wait
    wait_slice = 0.2
    #: what a timeout error says became of the running tasks (see :meth:`interrupt`)
    fate = "left to run on, results unused (a running future cannot be cancelled)"

    def __init__(self, run: Run) -> None:
        self.run = run
        #: pending futures and the work each one carries
        self.in_flight: dict[Future[Any], Any] = {}
        self._done: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()

    def submit_ready(self) -> BaseException | None:
        """Submit the work that is ready now; return an error that ends the run, if any."""
        raise NotImplementedError

    def complete(self, work: Any, future: Future[Any]) -> BaseException | None:
        """Apply a finished future to the run; return the task error, if any."""
        raise NotImplementedError

    def track(self, future: Future[Any], work: Any) -> None:
        """Keep ``future`` pending with ``work``; it is handed to :meth:`complete` when done."""
        self.in_flight[future] = work
        future.add_done_callback(self._done.put)

    def tasks_of(self, work: Any) -> list[Task]:
        """The tasks a piece of work runs (by default, the work is one task)."""
        return [work]

    def interrupt(self) -> None:
        """Ctrl-C (or another BaseException) in the caller, or the deadline: cancel
        what has not started."""
        for future in self.in_flight:
            future.cancel()

    def drive(self, timeout: float | None = None) -> BaseException | None:
        """Run to the end; return the first task error (the run's ``failed`` is set).

        With ``timeout``, after that many seconds stop as Ctrl-C does
        (:meth:`interrupt`) and return a :class:`TimeoutError` naming the
        tasks that were running.
        """
        deadline = None if timeout is None else Deadline(timeout)
        try:
            while True:
                error = self.submit_ready()
                if error is not None:
                    return self._stop(error)
                if not self.in_flight:
                    if self.run.remaining:
                        raise RuntimeError(
                            f"tarry: {self.run.remaining} tasks can never run (nothing is ready "
                            "or running); this is a bug in tarry, please report it"
                        )
                    return None
                completed = self._completed(deadline)
                if not completed and deadline is not None:
                    return self._time_up(deadline)
                for future in completed:
                    work = self.in_flight.pop(future)
                    error = self.complete(work, future)
                    if error is not None:
                        return self._stop(error)
        except BaseException:
            self.interrupt()
            raise

    def _time_up(self, deadline: Deadline) -> BaseException:
        """The deadline passed: stop as Ctrl-C does; the error names what was running."""
        # What cannot be cancelled has started (not every future keeps running())
        running = [
            task
            for future, work in self.in_flight.items()
            if not future.cancel() and not future.done()
            for task in self.tasks_of(work)
        ]
        error = deadline.error(running, self.run.remaining - len(running), self.fate)
        self.interrupt()
        return error

    def _completed(self, deadline: Deadline | None) -> list[Future[Any]]:
        """Wait for one future to finish; return it with any others finished meanwhile.

        Nothing once ``deadline`` has passed.
        """
        done = self._done
        while True:
            wait = self.wait_slice
            if deadline is not None:
                wait = min(wait, deadline.left())
                if wait <= 0:
                    return []
            interrupts.check()  # a Ctrl-C lost in a finalizer, or held back, arrives here
            try:
                first = done.get(timeout=wait)
                break
            except queue.Empty:
                continue
        found = [first]
        while True:
            try:
                found.append(done.get_nowait())
            except queue.Empty:
                return found

    def _stop(self, error: BaseException) -> BaseException:
        # A failed run starts nothing more: futures not started are dropped;
        # running ones finish on their own, their results are ignored.
        for future in self.in_flight:
            future.cancel()
        return error


#: per thread, the id of the executor whose task it runs (see :func:`_on_own_thread`)
_running_for = threading.local()


def _call_task(task: Task, inputs: dict[str, Any], timed: bool, executor: int, home: int) -> Any:
    """What an executor runs for one task: its value, and its timing if asked for.

    ``executor`` (an id) is noted for the task's thread while it runs: a
    compute nested in the task, on the same executor, then runs in place.
    In another process than ``home`` (the caller's), both travel back as
    :func:`~tarry._schedule.errors.send` packs them: a value or an exception
    that does not travel fails the task, never the executor.
    """
    if os.getpid() != home:
        return send(task, partial(_timed_call, task, inputs, timed, executor))
    return _timed_call(task, inputs, timed, executor)


def _timed_call(
    task: Task, inputs: dict[str, Any], timed: bool, executor: int
) -> tuple[Any, Timing | None]:
    outer = getattr(_running_for, "executor", None)
    _running_for.executor = executor
    try:
        if not timed:
            return call(task, inputs), None
        watch = Stopwatch()
        return call(task, inputs), watch.stop()
    finally:
        _running_for.executor = outer


def _on_own_thread(executor: Executor) -> bool:
    """Whether this thread is one of ``executor``'s: it runs a task of it (or, on a
    ``ThreadPoolExecutor``, any job of it)."""
    if getattr(_running_for, "executor", None) == id(executor):
        return True
    me = threading.current_thread()
    if me in getattr(executor, "_threads", ()):
        return True
    # A new thread may run its first job before the executor adds it to
    # _threads (it starts the thread first): its name tells it too.
    prefix = getattr(executor, "_thread_name_prefix", None)
    return bool(prefix) and me.name.startswith(f"{prefix}_")


class _ExecutorDriver(FutureDriver):
    """One future per task on a user's executor."""

    def __init__(self, run: Run, executor: Executor) -> None:
        super().__init__(run)
        self.executor = executor
        self.stubs: dict[str, Task] = {}
        self.timed = run.events is not None
        self.home = os.getpid()

    def submit_ready(self) -> BaseException | None:
        run, values, submit = self.run, self.run.values, self.executor.submit
        executor = id(self.executor)
        while (task := run.pop()) is not None:
            inputs = {d.key: values[d.key] for d in task.deps}
            # slim: an executor that pickles (a process pool) must not
            # pickle the whole graph above the task
            try:
                future = submit(
                    _call_task, slim(task, self.stubs), inputs, self.timed, executor, self.home
                )
            except Exception as exc:  # shut down, or it pickles at submit and failed
                return run.fail(task, exc)
            self.track(future, task)
        return None

    def complete(self, work: Any, future: Future[Any]) -> BaseException | None:
        task: Task = work
        try:
            outcome = future.result()
        except BaseException as exc:  # the task's own error, or the executor's (cancelled, broken)
            return self._failed(task, exc)
        if type(outcome) is Sent:
            outcome, error = receive(outcome, task)
            if error is not None:
                return self._failed(task, error)
        value, timing = outcome
        if timing is not None:
            self.run.record(task, timing)
        self.run.finish(task, value)
        return None

    def _failed(self, task: Task, exc: BaseException) -> BaseException | None:
        if self.run.retry(task, exc):
            return None  # ready again: the next submit_ready sends it
        return self.run.fail(task, exc)


def run_executor(
    run: Run, settings: Settings = DEFAULTS, *, executor: Executor
) -> BaseException | None:
    """Run every task of ``run`` as one future on ``executor``; return the first task error.

    The executor is used as it is and never shut down: its own size limits
    the parallelism, so of ``settings`` only ``timeout`` counts. Any
    :class:`concurrent.futures.Executor` works; one that runs tasks in other
    processes must be able to pickle the functions and values involved (the
    standard library's process pool cannot pickle lambdas, for instance).
    Ctrl-C, and the deadline of ``settings.timeout``, cancel the futures
    that have not started; running ones cannot be stopped and run on.

    A compute nested in a task, on the same executor, runs its tasks in
    place, in the task's thread (as ``"sync"`` does): submitted, they would
    queue behind the outer tasks, which hold the executor's threads while
    they wait for them, a deadlock once every thread waits. So does a
    compute called from any job of a ``ThreadPoolExecutor`` on that executor.
    """
    if not run.remaining:
        return None
    if _on_own_thread(executor):
        return run_sync(run, settings)
    # a task asking for CPUs holds that many of the executor's workers
    run.limit_cpus(getattr(executor, "_max_workers", None) or usable_cpus())
    return _ExecutorDriver(run, executor).drive(settings.timeout)


def executor_backend(executor: Executor) -> Callable[[Run, Settings], BaseException | None]:
    """The backend function that runs graphs on ``executor``.

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(1) as pool:
    ...     backend = executor_backend(pool)
    ...     run = Run([Task("t", abs, (-2,), None, (), "abs")])
    ...     backend(run, Settings()), run.results()
    (None, {'t': 2})
    """

    def run_on_executor(run: Run, settings: Settings = DEFAULTS) -> BaseException | None:
        return run_executor(run, settings, executor=executor)

    return run_on_executor

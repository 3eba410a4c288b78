"""Running a graph through futures: the loop of every futures-based backend.

:class:`FutureDriver` is the loop common to backends that hand work to a
:class:`concurrent.futures.Executor`: submit what :meth:`Run.pop
<tarry._schedule.core.Run.pop>` gives, take completed futures from a queue,
feed :meth:`Run.finish <tarry._schedule.core.Run.finish>`, stop at the first
error or at Ctrl-C. :func:`run_executor` drives it over any executor the user
passes as ``scheduler=``, one task per future; the ``"processes"`` backend
builds on the same loop with batches of fused tasks.

Examples
--------
>>> from concurrent.futures import ThreadPoolExecutor
>>> from tarry import compute, delayed
>>> with ThreadPoolExecutor(2) as pool:
...     compute(delayed(sum)([delayed(abs)(-1), 2]), scheduler=pool)
(3,)
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from tarry._graph import Task, call
from tarry._schedule import DEFAULTS, Settings
from tarry._schedule.core import Run
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

    def interrupt(self) -> None:
        """Ctrl-C (or another BaseException) in the caller: cancel what has not started."""
        for future in self.in_flight:
            future.cancel()

    def drive(self) -> BaseException | None:
        """Run to the end; return the first task error (the run's ``failed`` is set)."""
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
                for future in self._completed():
                    work = self.in_flight.pop(future)
                    error = self.complete(work, future)
                    if error is not None:
                        return self._stop(error)
        except BaseException:
            self.interrupt()
            raise

    def _completed(self) -> list[Future[Any]]:
        """Wait for one future to finish; return it with any others finished meanwhile."""
        done = self._done
        while True:
            try:
                first = done.get(timeout=self.wait_slice)
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


def _call_task(task: Task, inputs: dict[str, Any], timed: bool) -> tuple[Any, Timing | None]:
    """What an executor runs for one task: its value, and its timing if asked for."""
    if not timed:
        return call(task, inputs), None
    watch = Stopwatch()
    return call(task, inputs), watch.stop()


class _ExecutorDriver(FutureDriver):
    """One future per task on a user's executor."""

    def __init__(self, run: Run, executor: Executor) -> None:
        super().__init__(run)
        self.executor = executor
        self.stubs: dict[str, Task] = {}
        self.timed = run.events is not None

    def submit_ready(self) -> BaseException | None:
        run, values, submit = self.run, self.run.values, self.executor.submit
        while (task := run.pop()) is not None:
            inputs = {d.key: values[d.key] for d in task.deps}
            # slim: an executor that pickles (a process pool) must not
            # pickle the whole graph above the task
            try:
                future = submit(_call_task, slim(task, self.stubs), inputs, self.timed)
            except Exception as exc:  # shut down, or it pickles at submit and failed
                return run.fail(task, exc)
            self.track(future, task)
        return None

    def complete(self, work: Any, future: Future[Any]) -> BaseException | None:
        task: Task = work
        try:
            value, timing = future.result()
        except Exception as exc:  # the task's own error, or the executor's (cancelled, broken)
            return self.run.fail(task, exc)
        if timing is not None:
            self.run.record(task, timing)
        self.run.finish(task, value)
        return None


def run_executor(
    run: Run, settings: Settings = DEFAULTS, *, executor: Executor
) -> BaseException | None:
    """Run every task of ``run`` as one future on ``executor``; return the first task error.

    The executor is used as it is and never shut down: its own size limits
    the parallelism, so ``settings`` are ignored. Any
    :class:`concurrent.futures.Executor` works; one that runs tasks in other
    processes must be able to pickle the functions and values involved (the
    standard library's process pool cannot pickle lambdas, for instance).
    Ctrl-C cancels the futures that have not started.
    """
    if not run.remaining:
        return None
    return _ExecutorDriver(run, executor).drive()


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

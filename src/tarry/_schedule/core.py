"""The executor-agnostic core of every scheduler: the state of one run.

A :class:`Run` knows which tasks are ready, which wait for what, and which
results are still needed. It does no locking and starts nothing: a backend
(:mod:`~tarry._schedule.sync`, :mod:`~tarry._schedule.threads`, ...) drives
it with :meth:`Run.pop` and :meth:`Run.finish`, and serialises those calls
itself if it uses several threads.

Ready tasks form a stack: a task made ready by the one that just finished
runs next, so a branch is finished before a new one is opened and memory
follows the graph's live frontier. Each result is dropped as soon as its last
dependent has run (targets are kept for the caller).

With several workers, one that finds nothing but root tasks (loads: no
computed inputs) while another finishes the task some finished result waits
for would only load data ahead that then waits too: with ``hold_roots`` on,
:meth:`Run.pop` holds roots back while such a *parked* result exists and
some task is running. A gather over many loads is never held (its inputs
wait for loads not started yet, not for running tasks), so loads still run
side by side; a fold (``acc = merge(acc, load(i))``) loads one chunk ahead
instead of all of them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from tarry._graph import Task, call, walk

__all__ = ["LOOK_PAST", "Run", "TaskEvent", "pop_first", "timed_call", "worker_name"]


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """What one task did: measured where it ran, not where it was scheduled.

    ``start`` and ``end`` are :func:`time.perf_counter` readings (one clock
    for all processes of a Linux machine); ``cpu`` is the thread CPU time the
    task used, in seconds.
    """

    key: str
    name: str
    worker: str
    start: float
    end: float
    cpu: float


_this_thread = threading.local()


def worker_name() -> str:
    """How events name the thread and process that ran a task (cached per thread)."""
    pid = os.getpid()
    cached: tuple[int, str] | None = getattr(_this_thread, "worker_name", None)
    if cached is None or cached[0] != pid:  # a forked child inherits the cache
        cached = _this_thread.worker_name = (pid, f"{pid}:{threading.current_thread().name}")
    return cached[1]


def timed_call(task: Task, values: dict[str, Any]) -> tuple[Any, float, float, float]:
    """``call(task, values)`` plus its start, end and CPU time, for profiling."""
    cpu = time.thread_time()
    start = time.perf_counter()
    value = call(task, values)
    end = time.perf_counter()
    return value, start, end, time.thread_time() - cpu


#: how far below the top of a ready stack a worker looks for work that may
#: start while root tasks are held back
LOOK_PAST = 16

T = TypeVar("T")


def pop_first(stack: list[T], may_start: Callable[[T], bool]) -> T | None:
    """Pop the topmost of the top :data:`LOOK_PAST` items that ``may_start``, if any.

    Examples
    --------
    >>> stack = [1, 2, 3]
    >>> pop_first(stack, lambda x: x % 2 == 0), stack
    (2, [1, 3])
    >>> pop_first(stack, lambda x: x > 5) is None
    True
    """
    for i in range(len(stack) - 1, max(-1, len(stack) - 1 - LOOK_PAST), -1):
        if may_start(stack[i]):
            return stack.pop(i)
    return None


def _reads_results(task: Task) -> bool:
    """True unless ``task`` is a root: one with no computed inputs."""
    return any(dep.func is not None for dep in task.deps)


class Run:
    """Bookkeeping for computing ``targets`` once.

    Examples
    --------
    >>> one = Task.literal("one", 1)
    >>> inc = Task("inc", lambda x: x + 1, (one,), None, (one,), "inc")
    >>> run = Run([inc])
    >>> task = run.pop()
    >>> task.key, run.pop()
    ('inc', None)
    >>> run.finish(task, 2)
    >>> run.remaining, run.values
    (0, {'inc': 2})
    """

    __slots__ = (
        "active", "dependents", "events", "failed", "fuse", "hold_roots", "parked", "ready", "refs",
        "remaining", "targets", "tasks", "values", "waiting",
    )  # fmt: skip

    def __init__(self, targets: Iterable[Task]) -> None:
        self.targets: list[Task] = list(targets)
        #: outputs computed and still needed, by key
        self.values: dict[str, Any] = {}
        #: per key, how many of its dependencies have not finished yet
        self.waiting: dict[str, int] = {}
        #: per key, the tasks that take it as input
        self.dependents: dict[str, list[Task]] = {}
        #: per key, how many unfinished tasks (or the caller) still need it
        self.refs: dict[str, int] = {}
        #: every task of the run, by key, dependencies first
        self.tasks: dict[str, Task] = {}
        #: ready tasks; the last one runs next
        self.ready: list[Task] = []
        #: tasks not finished yet
        self.remaining = 0
        #: per-task timings; None (the default) means nobody asked, and
        #: backends then skip timing altogether
        self.events: list[TaskEvent] | None = None
        #: key of the task whose error ended the run, if any
        self.failed: str | None = None
        #: whether a backend may run several tasks as one unit of work
        #: (``compute(optimize_graph=...)``)
        self.fuse = True
        #: hold root tasks back while a result waits only for running tasks
        #: (set by backends that run several tasks at once)
        self.hold_roots = False
        #: keys of the tasks handed out and not finished (with ``hold_roots``)
        self.active: set[str] = set()
        #: keys of finished results whose reader waits only for running tasks
        self.parked: set[str] = set()
        self._plan()

    def _plan(self) -> None:
        values, waiting, dependents, refs = self.values, self.waiting, self.dependents, self.refs
        tasks = self.tasks
        initial: list[Task] = []
        for task in walk(self.targets):
            key = task.key
            tasks[key] = task
            refs[key] = 0
            if task.func is None:
                values[key] = task.args[0]
                continue
            unfinished = 0
            for dep in task.deps:
                dkey = dep.key
                refs[dkey] += 1
                if dkey in values:
                    continue
                unfinished += 1
                if dkey in dependents:
                    dependents[dkey].append(task)
                else:
                    dependents[dkey] = [task]
            if unfinished:
                waiting[key] = unfinished
            else:
                initial.append(task)
        for target in self.targets:
            refs[target.key] += 1
        self.remaining = len(tasks) - len(values)
        initial.reverse()
        self.ready = initial

    def pop(self) -> Task | None:
        """The next task to run, or None when nothing is ready (or may start) now."""
        ready = self.ready
        if not ready:
            return None
        if not self.hold_roots:
            return ready.pop()
        if self.parked and self.active:
            # a non-root near the top may go; roots wait (see the module doc)
            held = pop_first(ready, _reads_results)
            if held is None:
                return None
            task = held
        else:
            task = ready.pop()
        self.active.add(task.key)
        parked = self.parked
        if parked:
            for dep in task.deps:
                parked.discard(dep.key)
        return task

    def finish(self, task: Task, value: Any) -> None:
        """Record ``task``'s output, release inputs no one needs, wake dependents."""
        key = task.key
        values, refs = self.values, self.refs
        self.remaining -= 1
        if refs[key]:
            values[key] = value
        for dep in task.deps:
            dkey = dep.key
            left = refs[dkey] - 1
            refs[dkey] = left
            if not left:
                del values[dkey]
        followers = self.dependents.pop(key, None)
        if followers is not None:
            waiting, ready = self.waiting, self.ready
            # reversed: the first dependent ends on top of the stack
            for follower in reversed(followers):
                fkey = follower.key
                left = waiting[fkey] - 1
                if left:
                    waiting[fkey] = left
                else:
                    del waiting[fkey]
                    ready.append(follower)
        if self.hold_roots:
            self.active.discard(key)
            if followers is not None and key in values:
                self._park(key, followers)

    def _park(self, key: str, followers: list[Task]) -> None:
        """Note ``key`` as parked if one of its readers waits only for running tasks."""
        values, active = self.values, self.active
        for follower in followers:
            missing = [d.key for d in follower.deps if d.key not in values]
            if missing and all(k in active for k in missing):
                self.parked.add(key)
                return

    def runner(self) -> Callable[[Task, dict[str, Any]], Any]:
        """The function a local backend runs each task with: plain, or timed."""
        return call if self.events is None else self._timed

    def _timed(self, task: Task, values: dict[str, Any]) -> Any:
        cpu = time.thread_time()
        start = time.perf_counter()
        try:
            return call(task, values)
        finally:
            self.record(task, worker_name(), start, time.perf_counter(), time.thread_time() - cpu)

    def record(self, task: Task, worker: str, start: float, end: float, cpu: float) -> None:
        """Keep the timing of one finished (or failed) task, if timings are wanted."""
        if self.events is not None:
            self.events.append(TaskEvent(task.key, task.name, worker, start, end, cpu))

    def results(self) -> dict[str, Any]:
        """The targets' outputs, by key, once ``remaining`` is 0."""
        values = self.values
        return {t.key: values[t.key] for t in self.targets}

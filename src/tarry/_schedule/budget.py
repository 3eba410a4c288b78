"""CPUs on a local pool: a task that asks for ``resources={"CPU": n}`` holds n of them.

On Ray and Dask the engine places such a task; on the local pools
(``"threads"``, ``"processes"``, an executor) the run itself keeps the
count. A backend that runs tasks side by side calls
:meth:`~tarry._schedule.core.Run.limit_cpus` with its number of workers;
if some task of the run asks for CPUs, every task holds its share while it
runs (one CPU unless it asks otherwise; ``{"CPU": 0}`` none) and a task
starts only once its share is free. The task waiting for CPUs is not
overtaken by smaller ones, so a wide task is never starved. A task that
asks for more CPUs than the pool has gets the whole pool, alone. Runs
whose tasks ask for no CPUs keep no count at all, so the threads
scheduler's growth while tasks wait is unchanged for them.

Examples
--------
>>> from tarry._graph import Task, TaskOptions
>>> wide = TaskOptions(resources={"CPU": 2})
>>> a, b = (Task(k, abs, (-1,), None, (), "abs", options=wide) for k in "ab")
>>> budget = CpuBudget.of([a, b], total=2)
>>> budget.take(a), budget.take(b)  # a holds both CPUs: b waits
(True, False)
>>> budget.release(a)
>>> budget.waiting is b, budget.take(b)
(True, True)
>>> CpuBudget.of([Task("c", abs, (-1,), None, (), "abs")], total=2) is None
True
"""

from __future__ import annotations

from collections.abc import Iterable

from tarry._graph import Task

__all__ = ["CpuBudget"]


def cpus_asked(task: Task) -> float | None:
    """The CPUs ``task`` asks for with ``resources=``, or None if it does not say."""
    options = task.options
    if options is None or not options.resources:
        return None
    asked = options.resources.get("CPU")
    return None if asked is None else float(asked)


class CpuBudget:
    """The CPUs of one run's pool that running tasks hold."""

    __slots__ = ("free", "held", "total", "waiting")

    def __init__(self, total: int) -> None:
        #: the pool's workers
        self.total = float(total)
        #: CPUs no running task holds
        self.free = float(total)
        #: per key of a running task, the CPUs it holds
        self.held: dict[str, float] = {}
        #: the task handed out next, once enough CPUs are free
        self.waiting: Task | None = None

    @classmethod
    def of(cls, tasks: Iterable[Task], total: int) -> CpuBudget | None:
        """A budget of ``total`` CPUs if one of ``tasks`` asks for CPUs, else None."""
        if any(cpus_asked(task) is not None for task in tasks):
            return cls(max(total, 1))
        return None

    def take(self, task: Task) -> bool:
        """Whether ``task`` may start now; if so it holds its CPUs, else it waits first in line."""
        asked = cpus_asked(task)
        need = min(1.0 if asked is None else asked, self.total)
        if need > self.free:
            self.waiting = task
            return False
        self.waiting = None
        self.free -= need
        self.held[task.key] = need
        return True

    def release(self, task: Task) -> None:
        """``task`` ended (or runs again later): its CPUs are free."""
        need = self.held.pop(task.key, None)
        if need is not None:
            self.free += need

"""A small record of the last run: what finished, what failed, what never started.

:func:`tarry._compute.run_graph` hands every :class:`~tarry._schedule.core.Run`
to :func:`remember` when it ends, however it ends (done, a task error,
Ctrl-C). It keeps only keys and numbers, never tasks or values, so a
finished compute of a million tasks leaves its graph and its results free
to be collected. Pictures (``visualize(color="status")``) and
the profiler read it back with :func:`last_run`.

What is kept, and why it stays small:

* the targets' keys; a task belongs to the run exactly when it is reachable
  from them, so membership needs no set of every key;
* the keys that never started (non-empty only after an error or Ctrl-C) and
  the failed key (after Ctrl-C, the task that was running, if only one
  was); every other task of the run is done, so the (large) set of done
  keys is not stored;
* ``run.events`` itself, when an observer asked for timings: the very list
  the backends filled, not a copy;
* what the cache did (``run.cache``, keys and numbers), when one was on:
  the tasks beneath a hit were not needed, so they are not of the run.

Examples
--------
>>> from tarry import delayed
>>> from tarry._tools.last_run import last_run, record_timings
>>> x = delayed(abs)(-1)
>>> with record_timings():
...     x.compute(scheduler="sync")
1
>>> record = last_run()
>>> record.targets == (x.key,), record.failed, list(record.durations()) == [x.key]
(True, None, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from tarry._cache.tally import CacheCounts, CacheTally
from tarry._graph import Task
from tarry._schedule.core import Run
from tarry._schedule.timing import TaskEvent
from tarry._tools.observe import Observer
from tarry._tools.text import describe_error

__all__ = [
    "DONE",
    "FAILED",
    "NOT_IN_RUN",
    "NOT_RUN",
    "LastRun",
    "Status",
    "last_run",
    "record_timings",
    "remember",
]

Status = Literal["done", "failed", "not run", "not in run"]
DONE: Final = "done"
FAILED: Final = "failed"
NOT_RUN: Final = "not run"
NOT_IN_RUN: Final = "not in run"


@dataclass(frozen=True, slots=True, eq=False)
class LastRun:
    """What the most recent compute in this process did.

    Attributes
    ----------
    targets
        Keys of the run's targets; the run's tasks are those reachable from them.
    size
        Number of tasks in the run, literal values included.
    failed
        Key of the task whose error ended the run; after an interruption
        (Ctrl-C) that no task caught, the task that was running then, if
        only one was (always so on "sync"); None otherwise.
    not_run
        Keys of tasks that never started because the run stopped early.
        Tasks still running in helper threads when it stopped count as done.
    error
        ``"TypeName: message"`` of the error that ended the run, or None.
    events
        Per-task timings, when an observer asked for them (see
        :func:`record_timings`); None otherwise.
    attempts
        Per key of a task that failed and ran again (``retries=``), how many
        times it ran; local schedulers count them (Ray and Dask retry out of
        sight).
    cache
        What the cache did (hits loaded before the run, misses, tasks not
        cacheable), when the compute had one; None otherwise.
        :meth:`cache_counts` sums it up.
    """

    targets: tuple[str, ...]
    size: int
    failed: str | None
    not_run: frozenset[str]
    error: str | None
    events: Sequence[TaskEvent] | None
    attempts: Mapping[str, int] = field(default_factory=dict)
    cache: CacheTally | None = None

    def cache_counts(self) -> CacheCounts | None:
        """Hits, misses that finished (and stored), tasks not cacheable; None without a cache.

        Examples
        --------
        >>> import tempfile
        >>> from tarry import delayed
        >>> x = delayed(abs, pure=True)(-1)
        >>> folder = tempfile.mkdtemp()
        >>> x.compute(cache=folder), str(last_run().cache_counts())
        (1, '0 hits, 1 miss stored')
        >>> x.compute(cache=folder), last_run().cache_counts().hits
        (1, 1)
        """
        if self.cache is None:
            return None
        failed = self.failed
        return self.cache.counts(lambda key: key != failed and key not in self.not_run)

    def durations(self) -> dict[str, float] | None:
        """Seconds each timed task ran, by key; None when no timings were recorded.

        Built on each call from :attr:`events`, so the record itself holds
        no second copy of the timings.
        """
        if self.events is None:
            return None
        seconds: dict[str, float] = {}
        for event in self.events:
            seconds[event.key] = seconds.get(event.key, 0.0) + (event.end - event.start)
        return seconds

    def statuses(self, tasks: Sequence[Task]) -> dict[str, Status]:
        """The status of each of ``tasks`` in this run, by key.

        ``tasks`` must list dependencies before their dependents, as
        :func:`tarry._graph.walk` does. A task the run did not include (not
        reachable from its targets, or only through tasks loaded from the
        cache) is ``"not in run"``; a task loaded is ``"done"``.
        """
        member = set(self.targets)
        loaded = frozenset(h.key for h in self.cache.hits) if self.cache is not None else _EMPTY
        for task in reversed(tasks):
            if task.key in member and task.key not in loaded:
                member.update(dep.key for dep in task.deps)
        statuses: dict[str, Status] = {}
        for task in tasks:
            key = task.key
            if key not in member:
                statuses[key] = NOT_IN_RUN
            elif key == self.failed:
                statuses[key] = FAILED
            elif key in self.not_run:
                statuses[key] = NOT_RUN
            else:
                statuses[key] = DONE
        return statuses


_last: LastRun | None = None


def remember(run: Run, error: BaseException | None) -> None:
    """Keep the outcome of ``run`` as the last run; called once per compute, however it ended.

    Costs O(targets) after a successful run and O(tasks left over) after a
    failed or interrupted one.
    """
    global _last
    # copy() first: after an error, helper threads may still be finishing
    # their current task and updating these containers. A C-level copy of a
    # str-keyed dict or a list is atomic under the GIL; iterating is not.
    waiting = run.waiting.copy()
    ready = run.ready.copy()
    not_run = frozenset(waiting).union(task.key for task in ready) if waiting or ready else _EMPTY
    failed = run.failed
    if failed is None and error is not None and run.remaining - len(not_run) == 1:
        failed = _running(run, not_run)
    _last = LastRun(
        targets=tuple(dict.fromkeys(task.key for task in run.targets)),
        size=len(run.tasks),
        failed=failed,
        not_run=not_run,
        error=None if error is None else describe_error(error),
        events=run.events,
        attempts=dict(run.attempts),
        cache=run.cache,
    )


_EMPTY: frozenset[str] = frozenset()


def _running(run: Run, not_run: frozenset[str]) -> str | None:
    """The one task that started and did not finish, found among the unfinished.

    An exception that escapes the backend (Ctrl-C on "sync", or in the
    caller's own task on "threads") names no task: the task it stopped is
    the one that left the stack of ready tasks and never finished. A task
    is unfinished while tasks wait for its result (``run.dependents``) or,
    for a target, while its value is missing.
    """
    values = run.values.copy()
    unfinished = set(run.dependents.copy())
    unfinished.update(t.key for t in run.targets if t.key not in values)
    unfinished -= not_run
    return unfinished.pop() if len(unfinished) == 1 else None


def last_run() -> LastRun | None:
    """The record of the most recent compute in this process, or None before the first."""
    return _last


def forget() -> None:
    """Drop the record, as if nothing had been computed yet (for tests)."""
    global _last
    _last = None


class _RecordTimings(Observer):
    def started(self, run: Run, scheduler: str, workers: int) -> None:
        run.want_timings()

    def finished(self, run: Run, error: BaseException | None) -> None:
        pass


def record_timings() -> Observer:
    """Record how long each task runs, for every compute inside the ``with`` block.

    Afterwards ``visualize(color="duration")`` can colour tasks by their
    run time. Timing costs about a microsecond per task, which is why it is
    off unless asked for.

    Examples
    --------
    >>> from tarry import delayed
    >>> with record_timings():
    ...     delayed(sum)([1, 2]).compute(scheduler="sync")
    3
    >>> len(last_run().durations())
    1
    """
    return _RecordTimings()

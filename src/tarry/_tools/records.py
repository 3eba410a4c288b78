"""Records of past computes, as profiles keep them: keys, names and numbers, no tasks or data.

A :class:`~tarry._schedule.core.Run` holds the tasks and their values while
it runs; once it has finished, :func:`record_of` keeps what the diagnostics
need of it (timings and the graph's shape by key) in a :class:`RunRecord`,
so a profile keeps no task and no result alive. Reports, timelines and
explanations read records only.

Examples
--------
>>> from tarry._schedule.timing import TaskEvent
>>> events = [TaskEvent("a", "f", "w", 0.0, 1.0, 0.5), TaskEvent("b", "f", "w", 1.0, 2.0, 0.5)]
>>> record = RunRecord("sync", 1, 0.0, 2.5, {"a": (), "b": ("a",)}, {"a": "f", "b": "f"}, events)
>>> record.wall, mean_times([record])
(2.5, {'f': 1.0})
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tarry._cache.tally import CacheCounts, CacheTally
from tarry._schedule.core import Run
from tarry._schedule.timing import TaskEvent
from tarry._tools.shape import dependency_keys
from tarry._tools.text import describe_error

__all__ = ["FunctionTimes", "RunRecord", "events_by_start", "mean_times", "origin", "record_of"]


@dataclass(frozen=True)
class RunRecord:
    """One compute as a profile keeps it: no task objects, no data."""

    #: scheduler name and the number of workers it had
    scheduler: str
    workers: int
    #: perf_counter readings when the scheduler started and returned
    start: float
    end: float
    #: every call of the graph: key -> keys of the calls it needs, dependencies first
    deps: dict[str, tuple[str, ...]]
    #: key -> function name, for every call of the graph
    names: dict[str, str]
    #: one per task that ran, in the order they finished
    events: list[TaskEvent]
    #: key of the task whose error ended the run, and the error, if any
    failed: str | None = None
    error: str | None = None
    #: key -> how many times the task ran, for the tasks retried (see ``retries=``)
    attempts: dict[str, int] = field(default_factory=dict)
    #: what the cache did, when the compute had one: its hits were loaded
    #: (before ``start``) and are not among ``events``
    cache: CacheTally | None = None

    @property
    def wall(self) -> float:
        """Seconds from the scheduler's start to its end."""
        return self.end - self.start

    def cache_counts(self) -> CacheCounts | None:
        """What the cache did, counting the misses that ran and did not fail; None
        without a cache."""
        if self.cache is None:
            return None
        ran = {e.key for e in self.events if e.key != self.failed}
        return self.cache.counts(ran.__contains__)


def record_of(
    run: Run,
    scheduler: str,
    workers: int,
    start: float,
    end: float,
    error: BaseException | None,
) -> RunRecord:
    """The record of ``run``, which ran from ``start`` to ``end`` and ended with ``error``.

    Examples
    --------
    >>> from tarry._graph import Task
    >>> from tarry._schedule.sync import run_sync
    >>> run = Run([Task("k", abs, (-1,), None, (), "abs")], timed=True)
    >>> run_sync(run)
    >>> kept = record_of(run, "sync", 1, 0.0, 1.0, None)
    >>> kept.deps, kept.names, [e.key for e in kept.events]
    ({'k': ()}, {'k': 'abs'}, ['k'])
    """
    deps, names = dependency_keys(run.tasks)
    return RunRecord(
        scheduler=scheduler,
        workers=workers,
        start=start,
        end=end,
        deps=deps,
        names=names,
        # the list itself, not a copy: a helper thread may still add the
        # event of a task that was running when another task failed
        events=run.events if run.events is not None else [],
        failed=run.failed,
        error=None if error is None else describe_error(error),
        attempts=dict(run.attempts),
        cache=run.cache,
    )


@dataclass(frozen=True)
class FunctionTimes:
    """Mean seconds per task of each function (by name), and tarry's overhead per task.

    ``overhead`` is None when it is no longer known (see
    :func:`tarry._tools.profile.latest_times`).
    """

    means: dict[str, float]
    overhead: float | None


def mean_times(records: Sequence[RunRecord]) -> dict[str, float]:
    """Mean task time per function name over ``records``."""
    totals: dict[str, list[float]] = {}
    for record in records:
        for e in record.events:
            entry = totals.get(e.name)
            if entry is None:
                totals[e.name] = [e.end - e.start, 1.0]
            else:
                entry[0] += e.end - e.start
                entry[1] += 1.0
    return {name: total / count for name, (total, count) in totals.items()}


def events_by_start(records: Sequence[RunRecord]) -> list[TaskEvent]:
    """Every task event of ``records``, by start time."""
    return sorted((e for record in records for e in record.events), key=lambda e: e.start)


def origin(records: Sequence[RunRecord]) -> float:
    """perf_counter reading when the first compute started (0 without records).

    A compute with a cache starts when it loads its first hit, before its
    scheduler starts.
    """
    loads = (hit.start for r in records if r.cache is not None for hit in r.cache.hits)
    return min((*(record.start for record in records), *loads), default=0.0)

"""``tarry.explain``: what a graph allows, before anything runs.

From the graph's shape alone: how many tasks of each function, how many
could run at once (width), how many levels deep it is and which chain of
tasks is the longest. With times measured by an earlier :func:`tarry.profile`
of the same functions (matched by function name), it also estimates the
work, the span and the best possible time.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from tarry._cache.explain import CachePlan, plan
from tarry._cache.switch import store_for
from tarry._compute import pack_targets, resolve_options
from tarry._graph import walk
from tarry._tools import findings as say
from tarry._tools.profile import Profile, latest_times
from tarry._tools.records import FunctionTimes
from tarry._tools.shape import dependency_keys, measure
from tarry._tools.text import format_chain, format_seconds, pretty_as_text, with_findings

if TYPE_CHECKING:
    from os import PathLike

__all__ = ["TYPICAL_OVERHEAD", "Estimate", "Explanation", "explain"]

#: seconds tarry spends per task on each scheduler, for tasks that do almost
#: nothing, used when the earlier profile's own overhead is no longer known.
#: Measured on the 2-core development machine (docs/benchmarks.md):
#: bench_core.py sync 1.7-2.7 µs and threads 2.2-2.9 µs per task up to 20k
#: tasks; bench_limits.py processes 28-32 µs; bench_backends.py a 1,023-task
#: tree on Ray 492 µs and on Dask 1,768 µs.
TYPICAL_OVERHEAD: Final = {
    "sync": 2e-6,
    "threads": 3e-6,
    "processes": 30e-6,
    "ray": 500e-6,
    "dask": 1.8e-3,
}


@dataclass(frozen=True)
class Estimate:
    """Times predicted from earlier measurements (seconds)."""

    work: float
    span: float
    best_time: float
    #: tarry's overhead per task measured then (None: no longer known)
    overhead_per_task: float | None
    #: functions in the graph the profile never saw (their tasks count as 0 s)
    unknown: list[str]
    #: the median time of the graph's tasks whose function was measured (None: none was)
    median_task: float | None = None


@dataclass(frozen=True)
class Explanation:
    """The shape of a graph and what it means; ``str()`` gives the readable text."""

    #: calls in the graph (values and persisted results are not tasks)
    tasks: int
    by_function: dict[str, int]
    #: most tasks that can run at the same time (tasks on one level)
    width: int
    #: number of levels: tasks on the longest chain
    depth: int
    critical_path: list[str]
    critical_path_names: list[str]
    scheduler: str
    workers: int
    estimate: Estimate | None
    findings: list[str] = field(default_factory=list)
    #: per task, load from the cache or run, and why (when a cache is on)
    cache: CachePlan | None = None

    def __str__(self) -> str:
        functions = ", ".join(f"{n} ×{c}" for n, c in self.by_function.items())
        lines = [
            f"tarry graph: {self.tasks} tasks ({functions or 'none'})",
            f"  width          {self.width:>8}   tasks that can run at the same time",
            f"  depth          {self.depth:>8}   tasks on the longest chain: "
            f"{format_chain(self.critical_path_names)}",
            f"  workers        {self.workers:>8}   {self.scheduler}",
        ]
        if self.estimate is not None:
            e, fmt = self.estimate, format_seconds
            lines += [
                f"  est. work      {fmt(e.work):>8}   sum of task times, from an earlier profile",
                f"  est. span      {fmt(e.span):>8}   the longest chain's time",
                f"  est. best      {fmt(e.best_time):>8}   max(work / workers, span)",
            ]
        text = with_findings(lines, self.findings)
        return text if self.cache is None else f"{text}\n{self.cache}"

    _repr_pretty_ = pretty_as_text


def explain(
    *objs: Any,
    scheduler: str | None = None,
    num_workers: int | None = None,
    profile: Profile | None = None,
    cache: str | PathLike[str] | bool | None = None,
) -> Explanation:
    """Explain what a graph allows, without running it.

    Parameters
    ----------
    *objs
        What you would pass to :func:`tarry.compute`.
    scheduler, num_workers
        The compute you have in mind (defaults as for :func:`tarry.compute`).
    profile
        Take task times from this profile; by default from the last
        :func:`tarry.profile` block that ran a compute, if any (mean time per
        function name). Without times, only the shape is explained.
    cache
        The cache a compute would use (default: :func:`tarry.cache`'s, if
        any; ``False``: none). Then ``cache`` in the result says per task
        whether it would load or run, and why (nothing is loaded, and a
        missing store is not created).

    Returns
    -------
    Explanation
        Numbers as attributes, findings in plain words, ``str()`` for both.

    Examples
    --------
    >>> import tarry
    >>> inc = tarry.delayed(lambda x: x + 1, name="inc")
    >>> total = tarry.delayed(sum, name="total")([inc(i) for i in range(8)])
    >>> why = tarry.explain(total, num_workers=2, profile=tarry.profile())
    >>> why.tasks, why.width, why.depth, why.critical_path_names
    (9, 8, 2, ['inc', 'total'])
    >>> print(why.findings[0])
    8 of the 9 tasks could run at the same time; the longest chain has 2 tasks (inc → total)
    """
    _, targets = pack_targets(objs)
    graph, names = dependency_keys({t.key: t for t in walk(targets)})
    options = resolve_options(scheduler, num_workers)
    store = store_for(cache, create=False)
    workers = options.workers
    shape = measure(graph)
    width, depth, path = shape.width, shape.depth, shape.path
    times = _times(profile)
    estimate = None
    if times is not None and times.means:
        means = times.means
        guess = {key: means.get(name, 0.0) for key, name in names.items()}
        work = sum(guess.values())
        span = measure(graph, guess).length
        unknown = sorted({n for n in names.values() if n not in means})
        measured = [means[name] for name in names.values() if name in means]
        median = statistics.median(measured) if measured else None
        best = max(work / workers, span)
        estimate = Estimate(work, span, best, times.overhead, unknown, median)
    result = Explanation(
        tasks=len(graph),
        by_function=dict(Counter(names.values()).most_common()),
        width=width,
        depth=depth,
        critical_path=path,
        critical_path_names=[names[k] for k in path],
        scheduler=options.name,
        workers=workers,
        estimate=estimate,
        cache=None if store is None else plan(targets, store),
    )
    result.findings.extend(_findings(result))
    return result


def _times(profile: Profile | None) -> FunctionTimes | None:
    if profile is None:
        return latest_times()
    if not profile.records:
        return None
    report = profile.report()
    means = {name: stats.mean for name, stats in report.by_function.items()}
    return FunctionTimes(means, report.overhead_per_task)


def _findings(x: Explanation) -> list[str]:
    """What the graph's shape and any earlier times say (worded in :mod:`.findings`)."""
    if not x.tasks:
        return [say.nothing_to_run()]
    path = format_chain(x.critical_path_names)
    found = []
    if x.width <= 1 and x.tasks > 1:
        found.append(say.one_chain(x.tasks, path))
    else:
        found.append(say.longest_chain(x.width, x.tasks, x.depth, path))
    if x.workers < x.width:
        found.append(say.workers_limit(x.scheduler, x.workers, x.tasks))
    elif x.width > 1:
        found.append(say.enough_workers(x.width))
    e = x.estimate
    if e is not None:
        by_chain = e.span >= e.work / x.workers
        found.append(say.estimate(e.work, e.span, e.best_time, x.workers, by_chain))
        if e.unknown:
            found.append(say.unmeasured(e.unknown))
        # the median, not the mean: a few long tasks must not hide thousands of tiny ones
        overhead = e.overhead_per_task
        if overhead is None:
            overhead = TYPICAL_OVERHEAD.get(x.scheduler)
        if e.median_task is not None and overhead is not None and overhead > e.median_task:
            typical_on = None if e.overhead_per_task is not None else x.scheduler
            found.append(
                say.tasks_too_small(e.median_task, overhead, earlier=True, typical_on=typical_on)
            )
    return found

"""``tarry.explain``: what a graph allows, before anything runs.

From the graph's shape alone: how many tasks of each function, how many
could run at once (width), how many levels deep it is and which chain of
tasks is the longest. With times measured by an earlier :func:`tarry.profile`
of the same functions (matched by function name), it also estimates the
work, the span and the best possible time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tarry import config
from tarry._build.traverse import pack
from tarry._graph import Task, walk
from tarry._schedule import check_scheduler
from tarry._tools.observe import describe
from tarry._tools.report import format_path, format_seconds, with_findings
from tarry._tools.shape import dependency_keys, measure

if TYPE_CHECKING:
    from tarry._tools.profile import FunctionTimes, Profile

__all__ = ["Estimate", "Explanation", "explain"]


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

    def __str__(self) -> str:
        functions = ", ".join(f"{n} ×{c}" for n, c in self.by_function.items())
        lines = [
            f"tarry graph: {self.tasks} tasks ({functions or 'none'})",
            f"  width          {self.width:>8}   tasks that can run at the same time",
            f"  depth          {self.depth:>8}   tasks on the longest chain: "
            f"{format_path(self.critical_path_names)}",
            f"  workers        {self.workers:>8}   {self.scheduler}",
        ]
        if self.estimate is not None:
            e, fmt = self.estimate, format_seconds
            lines += [
                f"  est. work      {fmt(e.work):>8}   sum of task times, from an earlier profile",
                f"  est. span      {fmt(e.span):>8}   the longest chain's time",
                f"  est. best      {fmt(e.best_time):>8}   max(work / workers, span)",
            ]
        return with_findings(lines, self.findings)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def explain(
    *objs: Any,
    scheduler: str | None = None,
    num_workers: int | None = None,
    profile: Profile | None = None,
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
    8 of the 9 tasks can run at the same time; the longest chain has 2 tasks (inc → total)
    """
    deps: dict[str, Task] = {}
    for obj in objs:
        pack(obj, deps)
    tasks = {t.key: t for t in walk(deps.values())}
    graph, names = dependency_keys(tasks)
    chosen = check_scheduler(config.get("scheduler") if scheduler is None else scheduler)
    wanted = config.check_num_workers(
        config.get("num_workers") if num_workers is None else num_workers
    )
    name, workers = describe(chosen, wanted)
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
        estimate = Estimate(work, span, max(work / workers, span), times.overhead, unknown)
    result = Explanation(
        tasks=len(graph),
        by_function=dict(Counter(names.values()).most_common()),
        width=width,
        depth=depth,
        critical_path=path,
        critical_path_names=[names[k] for k in path],
        scheduler=name,
        workers=workers,
        estimate=estimate,
    )
    result.findings.extend(_findings(result))
    return result


def _times(profile: Profile | None) -> FunctionTimes | None:
    from tarry._tools.profile import FunctionTimes, latest_times

    if profile is None:
        return latest_times()
    if not profile.runs:
        return None
    report = profile.report()
    means = {name: stats.mean for name, stats in report.by_function.items()}
    return FunctionTimes(means, report.overhead_per_task)


def _findings(x: Explanation) -> list[str]:
    if not x.tasks:
        return ["there is nothing to run: no lazy value, or only persisted ones"]
    path = format_path(x.critical_path_names)
    found = []
    some = f"all {x.tasks}" if x.width == x.tasks else f"{x.width} of the {x.tasks}"
    if x.width <= 1 and x.tasks > 1:
        found.append(
            f"the {x.tasks} tasks form one chain ({path}): each needs the one before, so no "
            f"scheduler can run any two of them at the same time"
        )
    else:
        found.append(
            f"{some} tasks can run at the same time; the longest chain has {x.depth} "
            f"task{'s' if x.depth > 1 else ''} ({path})"
        )
    if x.workers < x.width:
        found.append(
            f"{x.scheduler} with {x.workers} worker{'s' if x.workers > 1 else ''} runs at most "
            f"{x.workers} at once, so the run takes at least as long as "
            f"{-(-x.tasks // x.workers)} tasks one after another"
        )
    elif x.width > 1:
        found.append(f"more than {x.width} workers cannot help this graph")
    e = x.estimate
    if e is not None:
        fmt = format_seconds
        bound = "the longest chain" if e.span >= e.work / x.workers else "the number of workers"
        found.append(
            f"from earlier measurements: work ≈ {fmt(e.work)}, span ≈ {fmt(e.span)}, so "
            f"the best possible time with {x.workers} worker{'s' if x.workers > 1 else ''} is "
            f"≈ {fmt(e.best_time)}, set by {bound}"
        )
        if e.unknown:
            found.append(
                f"no times were measured for {', '.join(e.unknown)}: the estimates count "
                f"those tasks as instant"
            )
        typical = e.work / x.tasks
        if e.overhead_per_task is not None and e.overhead_per_task > typical:
            found.append(
                f"tasks took {fmt(typical)} on average, less than the {fmt(e.overhead_per_task)} "
                f"per-task overhead measured then: make each task do more work"
            )
    return found

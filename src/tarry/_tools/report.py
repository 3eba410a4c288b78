"""The numbers that explain a run's speed, and findings in plain words.

Terms, as used in the report:

work
    Sum of the task times: how long one worker would need.
span
    Length of the critical path, the slowest chain of tasks that each wait
    for the one before; no number of workers can finish sooner.
best possible time
    ``max(work / workers, span)``: a lower bound for any scheduler with the
    run's number of workers.
wall time
    Measured from the moment the scheduler started to the moment it
    returned (graph planning before that is not included).
efficiency
    ``best possible / wall``: 100 % means no scheduler could have done better.
speedup
    ``work / wall``: how much faster than running the tasks one by one.
overhead per task
    ``(wall - best possible) / tasks``: the time lost beyond the best
    possible, spread over the tasks; it covers scheduling, moving data
    between workers and idle workers.

Task times are measured in the worker, around the function call only.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tarry._schedule.cpus import usable_cpus
from tarry._tools.shape import measure

if TYPE_CHECKING:
    from tarry._tools.profile import RunRecord
    from tarry._tools.resources import ResourceSample

__all__ = ["ComputeStats", "FunctionStats", "Report", "analyse", "format_path", "format_seconds"]


def format_seconds(seconds: float) -> str:
    """A duration with a unit that suits it.

    Examples
    --------
    >>> [format_seconds(s) for s in (12.34, 2.0, 0.0123, 0.00042, 2e-5, 3e-7)]
    ['12.3 s', '2.00 s', '12.3 ms', '420 µs', '20.0 µs', '0.3 µs']
    """
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-2:
        return f"{seconds * 1e3:.1f} ms"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-4:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1e6:.1f} µs"


def with_findings(lines: list[str], findings: Sequence[str]) -> str:
    """``lines``, then the findings as a list, as one text (reports and explanations).

    Examples
    --------
    >>> print(with_findings(["tarry graph: 2 tasks"], ["one chain"]))
    tarry graph: 2 tasks
    Findings:
      - one chain
    """
    if findings:
        lines = [*lines, "Findings:", *(f"  - {finding}" for finding in findings)]
    return "\n".join(lines)


def format_path(names: Sequence[str], most: int = 6) -> str:
    """A chain of function names, repeats grouped, long chains shortened.

    Examples
    --------
    >>> format_path(["inc", "add"])
    'inc → add'
    >>> format_path(["read"] + ["inc"] * 40 + ["add"])
    'read → inc ×40 → add'
    >>> format_path([f"f{i}" for i in range(10)], most=4)
    'f0 → f1 → … (6 tasks) … → f8 → f9'
    """
    groups: list[tuple[str, int]] = []
    for name in names:
        if groups and groups[-1][0] == name:
            groups[-1] = (name, groups[-1][1] + 1)
        else:
            groups.append((name, 1))
    parts = [name if n == 1 else f"{name} ×{n}" for name, n in groups]
    if len(parts) > most:
        head, tail = most // 2, most - most // 2
        hidden = sum(n for _, n in groups[head : len(groups) - tail])
        parts = [*parts[:head], f"… ({hidden} tasks) …", *parts[len(parts) - tail :]]
    return " → ".join(parts)


@dataclass(frozen=True)
class FunctionStats:
    """Tasks of one function: how many, their total and mean time, their CPU time."""

    count: int
    total: float
    mean: float
    cpu: float


@dataclass(frozen=True)
class ComputeStats:
    """The numbers of one compute (seconds); see the module docstring for the terms."""

    scheduler: str
    workers: int
    #: tasks that ran (have timings), and calls in the graph
    tasks: int
    planned: int
    wall: float
    work: float
    span: float
    best_time: float
    width: int
    critical_path: list[str]
    critical_path_names: list[str]
    cpu_time: float
    busy_time: float
    failed: str | None
    error: str | None


@dataclass(frozen=True)
class Report:
    """What a profile says about its computes; ``str()`` gives the readable text.

    Times are in seconds. With several computes the numbers are summed over
    them (computes nested inside a task are left out: their time is part of
    that task), the critical path runs through them in order, and
    ``computes`` holds each one's numbers. See the module docstring for the
    exact definitions.
    """

    runs: int
    scheduler: str
    workers: int
    #: tasks that ran
    tasks: int
    wall: float
    work: float
    span: float
    #: keys and function names of the tasks on the critical path, first to last
    critical_path: list[str]
    critical_path_names: list[str]
    #: most tasks that could run at the same time (graph width)
    width: int
    best_time: float
    efficiency: float
    speedup: float
    #: the speedup the best possible time would give: work / best_time
    max_speedup: float
    overhead_per_task: float
    median_task: float
    #: thread CPU time of all tasks, and the time at least one task was running
    cpu_time: float
    busy_time: float
    by_function: dict[str, FunctionStats]
    #: key of the task whose error stopped a compute, and that error
    failed: str | None
    error: str | None
    computes: list[ComputeStats] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    #: CPU cores the whole process kept busy on average while computing
    #: (sampled; None without samples)
    cores_busy: float | None = None

    def __str__(self) -> str:
        if not self.runs:
            return "tarry profile: no compute ran inside the profile block"
        fmt = format_seconds
        computes = "1 compute" if self.runs == 1 else f"{self.runs} computes"
        workers = "1 worker" if self.workers == 1 else f"{self.workers} workers"
        top = sorted(self.by_function.items(), key=lambda kv: -kv[1].total)
        functions = ", ".join(f"{n} {s.count} × {fmt(s.mean)}" for n, s in top[:5])
        if len(top) > 5:
            functions += f", … ({len(top) - 5} more)"
        bound = "sum of max(work / workers, span) per compute" if self.runs > 1 else (
            f"max(work / {workers}, span)"
        )  # fmt: skip
        rows = [
            ("wall time", fmt(self.wall), "measured, scheduler start to end"),
            ("work", fmt(self.work), "sum of task times: one worker's time"),
            ("span", fmt(self.span), f"critical path: {format_path(self.critical_path_names)}"),
            ("best possible", fmt(self.best_time), bound),
            ("efficiency", f"{self.efficiency:.0%}", "best possible / wall time"),
            ("speedup", f"{self.speedup:.2f}×",
             f"work / wall time (at most {self.max_speedup:.2f}×)"),
            ("overhead", f"{fmt(self.overhead_per_task)}/task", "(wall - best possible) / tasks"),
            ("median task", fmt(self.median_task), ""),
        ]  # fmt: skip
        lines = [f"tarry profile: {computes}, {self.tasks} tasks on {self.scheduler}, {workers}"]
        lines += [f"  {a:<14}{b:>14}   {c}".rstrip() for a, b, c in rows]
        lines.append(f"  by function   {functions}")
        return with_findings(lines, self.findings)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


def _busy_time(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of intervals: the time at least one task was running."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def _top_level(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """Computes not nested inside another one (whose time a task already counts)."""
    top: list[RunRecord] = []
    reach = float("-inf")
    for run in sorted(runs, key=lambda r: (r.start, -r.end)):
        if run.end > reach:
            top.append(run)
            reach = run.end
    return top


def peak_concurrency(spans: Sequence[tuple[float, float]]) -> int:
    """The most intervals ``(start, end)`` open at the same moment.

    Examples
    --------
    >>> peak_concurrency([(0, 2), (1, 3), (2.5, 4)])
    2
    """
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    peak = running = 0
    for _, step in edges:  # an end sorts before a start at the same moment
        running += step
        peak = max(peak, running)
    return peak


def _compute_stats(run: RunRecord) -> ComputeStats:
    times = {e.key: e.end - e.start for e in run.events}
    work = sum(times.values())
    shape = measure(run.deps, times)
    span, path = shape.length, shape.path
    # The threads scheduler adds threads while tasks wait: count the workers
    # that really ran at once, not only the ones it started with.
    workers = max(run.workers, peak_concurrency([(e.start, e.end) for e in run.events]))
    return ComputeStats(
        scheduler=run.scheduler,
        workers=workers,
        tasks=len(run.events),
        planned=len(run.deps),
        wall=run.wall,
        work=work,
        span=span,
        best_time=max(work / workers, span),
        width=shape.width,
        critical_path=path,
        critical_path_names=[run.names[k] for k in path],
        cpu_time=sum(e.cpu for e in run.events),
        busy_time=_busy_time([(e.start, e.end) for e in run.events]),
        failed=run.failed,
        error=run.error,
    )


def analyse(runs: Sequence[RunRecord], samples: Sequence[ResourceSample] = ()) -> Report:
    """Sum up the top-level computes of a profile and explain them.

    ``samples`` (the profile's CPU readings) tell whether the machine's cores
    were the limit.
    """
    top = _top_level(runs)
    stats = [_compute_stats(run) for run in top]
    durations = [e.end - e.start for r in top for e in r.events]
    by_function: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        for e in run.events:
            by_function.setdefault(e.name, []).append((e.end - e.start, e.cpu))
    functions = {
        name: FunctionStats(
            len(pairs),
            sum(d for d, _ in pairs),
            sum(d for d, _ in pairs) / len(pairs),
            sum(c for _, c in pairs),
        )
        for name, pairs in by_function.items()
    }
    first_failure = next((c for c in stats if c.failed is not None), None)
    tasks = len(durations)
    work = sum(c.work for c in stats)
    wall = sum(c.wall for c in stats)
    best = sum(c.best_time for c in stats)
    report = Report(
        runs=len(top),
        scheduler=", ".join(dict.fromkeys(c.scheduler for c in stats)),
        workers=max((c.workers for c in stats), default=1),
        tasks=tasks,
        wall=wall,
        work=work,
        span=sum(c.span for c in stats),
        critical_path=[k for c in stats for k in c.critical_path],
        critical_path_names=[n for c in stats for n in c.critical_path_names],
        width=max((c.width for c in stats), default=0),
        best_time=best,
        efficiency=min(best / wall, 1.0) if wall > 0 else 1.0,
        speedup=work / wall if wall > 0 else 1.0,
        max_speedup=work / best if best > 0 else 1.0,
        overhead_per_task=max(wall - best, 0.0) / tasks if tasks else 0.0,
        median_task=statistics.median(durations) if durations else 0.0,
        cpu_time=sum(c.cpu_time for c in stats),
        busy_time=sum(c.busy_time for c in stats),
        by_function=functions,
        failed=first_failure.failed if first_failure else None,
        error=first_failure.error if first_failure else None,
        computes=stats,
        cores_busy=_cores_busy(top, samples),
    )
    report.findings.extend(_findings(report))
    return report


def _cores_busy(runs: Sequence[RunRecord], samples: Sequence[ResourceSample]) -> float | None:
    """Mean CPU cores in use during ``runs``, from samples taken inside them."""
    inside = [
        s.cpu_percent
        for s in samples
        if s.cpu_percent == s.cpu_percent  # not NaN
        and any(r.start < s.time <= r.end for r in runs)
    ]
    return statistics.mean(inside) / 100 if inside else None


_MULTITHREADED = "; the tasks themselves run on several threads (as pandas and NumPy can)"

#: per-compute findings shown for at most this many computes (the longest)
_MOST_COMPUTES = 3


def _findings(r: Report) -> list[str]:
    """The plain-words part: what limited the run, and what to change."""
    fmt = format_seconds
    found: list[str] = []
    if r.failed is not None:
        found.append(
            f"a compute stopped at task {r.failed} ({r.error}); "
            f"the numbers cover the {r.tasks} tasks that ran"
        )
    if not r.tasks:
        silent = [c.scheduler for c in r.computes if c.planned and c.failed is None]
        if silent:
            found.append(
                f"the {silent[0]} scheduler reported no task timings, so work, span and "
                f"the findings that need them are unknown"
            )
        else:
            found.append("no task ran: there was nothing lazy to compute, or it was all persisted")
        return found
    workers = "1 worker" if r.workers == 1 else f"{r.workers} workers"
    if r.tasks > 1:
        allows = f"with {workers}" if r.runs == 1 else "with their workers"
        found.append(
            f"speedup {r.speedup:.1f}×: the {r.tasks} tasks take {fmt(r.work)} one after "
            f"another (the work) and the run took {fmt(r.wall)}; the most {allows} is "
            f"{r.max_speedup:.1f}× (work / best possible)"
        )
    cores = usable_cpus()
    # Saturated by the tasks themselves (their time covers most of the CPU
    # used), not by scheduling overhead, which the tiny-task finding explains.
    # A task may fill several cores alone (pandas and NumPy run threads of
    # their own): then fewer tasks than workers can run at once.
    running = r.work / r.busy_time if r.busy_time > 0 else 1.0
    per_task = r.cores_busy / max(running, 1.0) if r.cores_busy is not None else 0.0
    saturated = (
        r.cores_busy is not None
        and r.workers > 1
        and (r.cores_busy >= 0.75 * cores or per_task > 1.15)
        and r.work >= 0.5 * r.wall * r.cores_busy
    )
    if saturated and per_task > 1.15:
        fits = max(1, int(cores / per_task))
        found.append(
            f"each task kept about {per_task:.1f} CPU cores busy on its own (pandas and NumPy "
            f"run threads of their own), so this machine's {cores} cores can feed only {fits} "
            f"such task{'s' if fits > 1 else ''} at a time: the cores were the limit, not the "
            f"scheduler, and more workers cannot help"
        )
    elif saturated:
        found.append(
            f"the process kept {r.cores_busy:.1f} of the machine's {cores} CPU cores busy on "
            f"average: the cores were the limit, not the scheduler, and more workers cannot "
            f"help. Task times include waiting for a core, so work and speedup are "
            f"overstated{_MULTITHREADED if r.workers <= cores else ''}"
        )
    # With the cores saturated, time beyond the best possible is waiting for
    # a core, not per-task overhead.
    tiny = not saturated and r.tasks > 1 and r.overhead_per_task > max(r.median_task, 1e-6)
    if tiny:
        slower = ", so running them in a plain loop would be faster" if r.wall > r.work else ""
        found.append(
            f"the median task takes {fmt(r.median_task)}, less than the per-task overhead of "
            f"{fmt(r.overhead_per_task)}{slower}: make each task do more work (for example a "
            f"batch of items per task instead of one)"
        )
    lost = r.wall - r.best_time
    if not tiny and not saturated and r.efficiency < 0.8 and lost > 0.01:
        found.append(
            f"the run took {fmt(lost)} longer than the best possible ({fmt(r.overhead_per_task)} "
            f"per task): time spent starting workers, moving data between them and "
            f"scheduling, or tasks that waited for each other"
        )
    longest = sorted(range(len(r.computes)), key=lambda i: -r.computes[i].wall)[:_MOST_COMPUTES]
    for i in sorted(longest):
        prefix = "" if r.runs == 1 else f"compute {i + 1}: "
        found += [prefix + text for text in _compute_findings(r.computes[i], tiny or saturated)]
    if r.runs > _MOST_COMPUTES:
        found.append(f"(findings above cover the {_MOST_COMPUTES} longest of {r.runs} computes)")
    return found


def _compute_findings(c: ComputeStats, tiny: bool) -> list[str]:
    """What bounds one compute, and what the CPU use says about its tasks.

    ``tiny`` (tasks shorter than the overhead, or cores already saturated)
    holds back advice to add workers.
    """
    fmt = format_seconds
    found: list[str] = []
    if not c.tasks:
        return found
    path = format_path(c.critical_path_names)
    # "the critical path inc → add takes 2.0 s"; a one-task path is just the longest task
    if len(c.critical_path) > 1:
        critical = f"the critical path {path}"
    else:
        critical = f"the longest task ({path})"
    some = f"all {c.tasks}" if c.width == c.tasks else f"{c.width} of the {c.tasks}"
    workers = "1 worker" if c.workers == 1 else f"{c.workers} workers"
    if c.width <= 1 and c.tasks > 1:
        found.append(
            f"the tasks form one chain ({path}): each waits for the one before, so none can "
            f"run in parallel; its {fmt(c.span)} is the best any scheduler can do"
        )
    elif c.span >= c.work / c.workers:
        found.append(
            f"{some} tasks could run at the same time; {critical} takes {fmt(c.span)}, "
            f"so {fmt(c.span)} is the best any scheduler can do, however many workers it has"
        )
    else:
        one_at_a_time = "the sync scheduler runs one task at a time" if c.workers == 1 else (
            f"only {c.workers} can run at once with {workers}"
        )  # fmt: skip
        more = "" if tiny else (
            f"; with {c.width} workers the best possible would be "
            f"{fmt(max(c.work / c.width, c.span))}"
        )  # fmt: skip
        found.append(
            f"{some} tasks could run at the same time but {one_at_a_time}: {fmt(c.work)} of "
            f"work needs at least {fmt(c.work / c.workers)} ({critical} takes only "
            f"{fmt(c.span)}){more}"
        )
    cores = usable_cpus()
    on_cpu = c.cpu_time / c.work if c.work > 0 else 0.0
    could_use = min(c.width, c.workers, cores)
    if c.scheduler == "threads" and could_use > 1 and c.busy_time > 0 and c.work >= 0.01:
        running = c.work / c.busy_time
        in_use = c.cpu_time / c.busy_time
        # Pure Python keeps one thread on the CPU at a time: whether the tasks
        # overlapped (each then waits for the GIL) or ran one after another,
        # together they use about one core (less on a busy machine).
        if (
            0.45 <= in_use <= 1.2
            and in_use < 0.75 * could_use
            and (running >= 1.4 or on_cpu >= 0.45)
        ):
            overstated = "" if running < 1.4 else (
                "; their times include waiting for the GIL, so work and speedup are "
                f"overstated: their CPU time is {fmt(c.cpu_time)}"
            )  # fmt: skip
            found.append(
                f"tasks held the GIL {min(in_use, 1.0):.0%} of the time they were running: "
                f"together they used {in_use:.1f} CPU core although {could_use} could have "
                f"run at once ({running:.1f} did on average), so threads cannot run them in "
                f"parallel: use scheduler='processes'{overstated}"
            )
    if c.workers == 1 and c.width > 1 and on_cpu >= 0.4 and c.work >= 0.01 and not tiny:
        found.append(
            f"tasks spent {on_cpu:.0%} of their time computing; up to {min(c.width, cores)} "
            f"could run at once on this machine's {cores} cores with scheduler='processes' "
            f"(threads help only code that releases the GIL, such as NumPy, pandas or I/O)"
        )
    if (
        c.workers > 1
        and on_cpu < 0.2
        and c.width > c.workers
        and c.work / c.workers > 1.05 * c.span
        and not tiny
    ):
        found.append(
            f"tasks spent {1 - on_cpu:.0%} of their time waiting (sleep, I/O, locks) rather "
            f"than computing: more workers than CPU cores would help, e.g. "
            f"num_workers={min(c.width, 8 * cores)}"
        )
    return found

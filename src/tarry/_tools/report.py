"""The numbers that explain a run's speed, and which findings they call for.

:func:`analyse` turns the records of a profile's computes
(:mod:`tarry._tools.records`) into a :class:`Report`; the thresholds below
decide which findings apply, and :mod:`tarry._tools.findings` words them.

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

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from tarry._cache.tally import CacheCounts
from tarry._schedule.cpus import usable_cpus
from tarry._tools import findings as say
from tarry._tools.records import RunRecord
from tarry._tools.resources import ResourceSample
from tarry._tools.shape import measure
from tarry._tools.text import counted, format_chain, format_seconds, pretty_as_text, with_findings

__all__ = ["ComputeStats", "FunctionStats", "Report", "analyse", "peak_concurrency"]

# Thresholds of the findings. Where no measurement is named, the value is a
# judgement (none was recorded when it was chosen); the reason given is why
# it sits where it does.

#: the process kept at least this share of the usable cores busy: the cores
#: were the limit. A judgement: CPU readings of a shared machine taken every
#: 50 ms stay below 100 %, and at 3/4 of a 4-core machine one core was free.
SATURATED_CORES: Final = 0.75
#: a task keeping more cores than this busy on its own runs threads of its
#: own: above one core (pure Python) plus sampling noise, below the 1.4
#: cores each ``read_csv`` task of the tutorial's groupby keeps busy (README,
#: ``tarry tutorial`` on the 2-core machine).
CORES_PER_TASK: Final = 1.15
#: saturation counts only when the tasks' own time covers at least this
#: share of the CPU the process used (work >= share × wall × cores busy);
#: below it, scheduling overhead kept the cores busy, which the tiny-task
#: finding explains. A judgement: half.
TASKS_OWN_SHARE: Final = 0.5
#: below this efficiency (best possible / wall) lost time is a finding ...
LOW_EFFICIENCY: Final = 0.8
#: ... when it is also at least this many seconds: less is a thread start
#: and timer noise. A judgement.
LOST_AT_LEAST: Final = 0.01
#: tasks count as tiny when the overhead per task exceeds their median time
#: and this: about what timing one task costs (see ``record_timings``), so
#: a run of instant tasks is not called tiny for its timing alone.
MIN_TASK_TIME: Final = 1e-6
#: findings about CPU use need at least this much work (seconds); less is
#: thread start-up and timer resolution. A judgement.
MIN_WORK: Final = 0.01
#: CPU cores that tasks holding the GIL use together while any of them
#: runs (CPU time / busy time): pure Python keeps one core busy however
#: many threads run it, so about 1; down to 0.45 on a shared, loaded
#: machine, up to 1.2 for timer noise. A judgement around that 1.
GIL_CORES: Final = (0.45, 1.2)
#: ... only when that is below this share of the cores the tasks could
#: have used (min of width, workers, cores): else threads did their best.
GIL_ROOM: Final = 0.75
#: tasks overlapped when on average at least this many ran at once (work /
#: busy time); then their times include waiting for the GIL. A judgement:
#: well above 1, which one task at a time gives.
OVERLAPPED: Final = 1.4
#: tasks that did not overlap count as GIL-bound when they computed at
#: least this share of their time. A judgement, as :data:`COMPUTING`.
GIL_ON_CPU: Final = 0.45
#: with one worker, tasks computing at least this share of their time would
#: gain from processes. A judgement: under half is mostly waiting.
COMPUTING: Final = 0.4
#: tasks computing less than this share of their time mostly waited (sleep,
#: I/O, locks), so more workers than cores help. A judgement.
WAITING: Final = 0.2
#: ... when the workers bounded the run by more than this factor over the
#: critical path (work / workers > factor × span); within 5 % more workers
#: cannot gain anything worth saying.
WORKERS_BOUND: Final = 1.05
#: the most workers per core suggested for waiting tasks. A judgement: a
#: thread costs little while it waits, but hundreds only add switching.
WORKERS_PER_CORE: Final = 8
#: per-compute findings are given for at most this many computes (the
#: longest), so a block of many computes gives a readable list.
MOST_COMPUTES: Final = 3
#: at least this many computes one after another ...
MANY_COMPUTES: Final = 10
#: ... of at most this many tasks each (their median) are dask's
#: anti-pattern "calling compute() in a loop". A judgement on both: a few
#: computes are a script's steps; ten of a handful of tasks each are a loop
#: whose values could have been computed together.
SMALL_GRAPH: Final = 10


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
    #: perf_counter readings when the scheduler started and returned
    start: float = 0.0
    end: float = 0.0


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
    #: key -> how many times the task ran, for the tasks that ran more than once
    #: (``retries=``; a local scheduler's count)
    attempts: dict[str, int] = field(default_factory=dict)
    #: what the cache did in the computes that had one (hits are not among
    #: ``tasks``: they did not run); None when none had
    cache: CacheCounts | None = None

    def __str__(self) -> str:
        if not self.runs:
            return "tarry profile: no compute ran inside the profile block"
        fmt = format_seconds
        computes = counted(self.runs, "compute")
        workers = counted(self.workers, "worker")
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
            ("span", fmt(self.span), f"critical path: {format_chain(self.critical_path_names)}"),
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
        if self.attempts:
            lines.append(f"  retried       {_retried(self.attempts)}")
        if self.cache is not None:
            lines.append(f"  cache         {self.cache}")
        return with_findings(lines, self.findings)

    _repr_pretty_ = pretty_as_text


def _retried(attempts: dict[str, int]) -> str:
    """The retried tasks in a line, most attempts first.

    Examples
    --------
    >>> _retried({"load-1": 2, "fetch-7": 3})
    '2 tasks ran 3 more times: fetch-7 (3 attempts), load-1 (2)'
    """
    more = sum(attempts.values()) - len(attempts)
    top = sorted(attempts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = [
        f"{key} ({n} attempts)" if i == 0 else f"{key} ({n})" for i, (key, n) in enumerate(top[:5])
    ]
    if len(top) > 5:
        shown.append(f"… ({len(top) - 5} more)")
    tasks = counted(len(attempts), "task")
    return f"{tasks} ran {more} more {'time' if more == 1 else 'times'}: {', '.join(shown)}"


def _busy_time(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of intervals: the time at least one task was running."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def _top_level(records: Sequence[RunRecord]) -> list[RunRecord]:
    """Computes not nested inside another one (whose time a task already counts)."""
    top: list[RunRecord] = []
    reach = float("-inf")
    for record in sorted(records, key=lambda r: (r.start, -r.end)):
        if record.end > reach:
            top.append(record)
            reach = record.end
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


def _compute_stats(record: RunRecord) -> ComputeStats:
    times = {e.key: e.end - e.start for e in record.events}
    work = sum(times.values())
    shape = measure(record.deps, times)
    span, path = shape.length, shape.path
    # The threads scheduler adds threads while tasks wait: count the workers
    # that really ran at once, not only the ones it started with.
    workers = max(record.workers, peak_concurrency([(e.start, e.end) for e in record.events]))
    return ComputeStats(
        scheduler=record.scheduler,
        workers=workers,
        tasks=len(record.events),
        planned=len(record.deps),
        wall=record.wall,
        work=work,
        span=span,
        best_time=max(work / workers, span),
        width=shape.width,
        critical_path=path,
        critical_path_names=[record.names[k] for k in path],
        cpu_time=sum(e.cpu for e in record.events),
        busy_time=_busy_time([(e.start, e.end) for e in record.events]),
        failed=record.failed,
        error=record.error,
        start=record.start,
        end=record.end,
    )


def analyse(records: Sequence[RunRecord], samples: Sequence[ResourceSample] = ()) -> Report:
    """Sum up the top-level computes of a profile and explain them.

    ``samples`` (the profile's CPU readings) tell whether the machine's cores
    were the limit.
    """
    top = _top_level(records)
    stats = [_compute_stats(record) for record in top]
    durations = [e.end - e.start for r in top for e in r.events]
    by_function: dict[str, list[tuple[float, float]]] = {}
    for record in records:
        for e in record.events:
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
        attempts={key: n for record in records for key, n in record.attempts.items()},
        cache=_cache_counts(records),
    )
    report.findings.extend(_findings(report))
    return report


def _cache_counts(records: Sequence[RunRecord]) -> CacheCounts | None:
    """What the cache did, summed over the computes that had one."""
    counts = [c for c in (r.cache_counts() for r in records) if c is not None]
    return sum(counts[1:], counts[0]) if counts else None


def _cores_busy(records: Sequence[RunRecord], samples: Sequence[ResourceSample]) -> float | None:
    """Mean CPU cores in use during ``records``, from samples taken inside them."""
    inside = [
        s.cpu_percent
        for s in samples
        if s.cpu_percent == s.cpu_percent  # not NaN
        and any(r.start < s.time <= r.end for r in records)
    ]
    return statistics.mean(inside) / 100 if inside else None


def in_a_loop(computes: Sequence[ComputeStats]) -> bool:
    """Whether these computes look like compute() called in a loop over tiny graphs.

    Many computes (:data:`MANY_COMPUTES`), one after another, of few tasks
    each (:data:`SMALL_GRAPH`, the median); computes that overlapped (from
    several threads) ran their tasks side by side, so they do not count.
    """
    return (
        len(computes) >= MANY_COMPUTES
        and statistics.median(c.planned for c in computes) <= SMALL_GRAPH
        and all(a.end <= b.start for a, b in itertools.pairwise(computes))
    )


def _findings(r: Report) -> list[str]:
    """What limited the run, and what to change (worded in :mod:`.findings`)."""
    found: list[str] = []
    if r.failed is not None:
        found.append(say.stopped_at(r.failed, r.error, r.tasks))
    if not r.tasks:
        silent = [c.scheduler for c in r.computes if c.planned and c.failed is None]
        if silent:
            found.append(say.no_timings(silent[0]))
        elif r.cache is not None and r.cache.hits:
            found.append(say.all_loaded(r.cache.hits))
        else:
            found.append(say.nothing_to_run())
        return found
    if r.tasks > 1:
        workers = r.workers if r.runs == 1 else None
        found.append(say.speedup(r.speedup, r.tasks, r.work, r.wall, r.max_speedup, workers))
    if in_a_loop(r.computes):
        found.append(
            say.compute_in_a_loop(r.runs, statistics.median(c.planned for c in r.computes))
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
        and (r.cores_busy >= SATURATED_CORES * cores or per_task > CORES_PER_TASK)
        and r.work >= TASKS_OWN_SHARE * r.wall * r.cores_busy
    )
    if saturated and per_task > CORES_PER_TASK:
        found.append(say.cores_per_task(per_task, cores, max(1, int(cores / per_task))))
    elif saturated and r.cores_busy is not None:
        found.append(say.cores_saturated(r.cores_busy, cores, r.workers <= cores))
    # With the cores saturated, time beyond the best possible is waiting for
    # a core, not per-task overhead.
    tiny = not saturated and r.tasks > 1 and r.overhead_per_task > max(r.median_task, MIN_TASK_TIME)
    if tiny:
        found.append(
            say.tasks_too_small(r.median_task, r.overhead_per_task, loop_faster=r.wall > r.work)
        )
    lost = r.wall - r.best_time
    if not tiny and not saturated and r.efficiency < LOW_EFFICIENCY and lost > LOST_AT_LEAST:
        found.append(say.time_lost(lost, r.overhead_per_task))
    longest = sorted(range(len(r.computes)), key=lambda i: -r.computes[i].wall)[:MOST_COMPUTES]
    for i in sorted(longest):
        prefix = "" if r.runs == 1 else f"compute {i + 1}: "
        found += [prefix + text for text in _compute_findings(r.computes[i], tiny or saturated)]
    if r.runs > MOST_COMPUTES:
        found.append(say.covers_longest(MOST_COMPUTES, r.runs))
    return found


def _compute_findings(c: ComputeStats, tiny: bool) -> list[str]:
    """What bounds one compute, and what the CPU use says about its tasks.

    ``tiny`` (tasks shorter than the overhead, or cores already saturated)
    holds back advice to add workers.
    """
    found: list[str] = []
    if not c.tasks:
        return found
    path = format_chain(c.critical_path_names)
    several = len(c.critical_path) > 1
    if c.width <= 1 and c.tasks > 1:
        found.append(say.one_chain(c.tasks, path, c.span))
    elif c.span >= c.work / c.workers:
        found.append(say.span_bound(c.width, c.tasks, path, several, c.span))
    else:
        best = None if tiny else max(c.work / c.width, c.span)
        found.append(
            say.workers_bound(
                c.width, c.tasks, c.scheduler, c.workers, c.work, path, several, c.span, best
            )
        )
    cores = usable_cpus()
    on_cpu = c.cpu_time / c.work if c.work > 0 else 0.0
    could_use = min(c.width, c.workers, cores)
    if c.scheduler == "threads" and could_use > 1 and c.busy_time > 0 and c.work >= MIN_WORK:
        running = c.work / c.busy_time
        in_use = c.cpu_time / c.busy_time
        # Pure Python keeps one thread on the CPU at a time: whether the tasks
        # overlapped (each then waits for the GIL) or ran one after another,
        # together they use about one core (less on a busy machine).
        low, high = GIL_CORES
        if (
            low <= in_use <= high
            and in_use < GIL_ROOM * could_use
            and (running >= OVERLAPPED or on_cpu >= GIL_ON_CPU)
        ):
            cpu_time = c.cpu_time if running >= OVERLAPPED else None
            found.append(say.gil_bound(in_use, could_use, running, cpu_time))
    if c.workers == 1 and c.width > 1 and on_cpu >= COMPUTING and c.work >= MIN_WORK and not tiny:
        found.append(say.use_processes(on_cpu, min(c.width, cores), cores))
    if (
        c.workers > 1
        and on_cpu < WAITING
        and c.width > c.workers
        and c.work / c.workers > WORKERS_BOUND * c.span
        and not tiny
    ):
        found.append(say.more_workers(1 - on_cpu, min(c.width, WORKERS_PER_CORE * cores)))
    return found

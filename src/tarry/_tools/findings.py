"""The findings of reports and explanations, each worded here once.

:mod:`tarry._tools.report` (after a run) and :mod:`tarry._tools.explain`
(before one) decide which findings apply, from their numbers and
thresholds; the functions here only put a finding into words. A finding
both can make, such as a graph that is one chain, is one function, so it
reads the same from both.

Times are in seconds and written by :func:`~tarry._tools.text.format_seconds`;
chains are already written by :func:`~tarry._tools.text.format_chain`.
"""

from __future__ import annotations

from collections.abc import Sequence

from tarry._tools.text import counted
from tarry._tools.text import format_seconds as fmt

__all__ = [
    "compute_in_a_loop",
    "cores_per_task",
    "cores_saturated",
    "covers_longest",
    "enough_workers",
    "estimate",
    "gil_bound",
    "longest_chain",
    "more_workers",
    "no_timings",
    "nothing_to_run",
    "one_chain",
    "span_bound",
    "speedup",
    "stopped_at",
    "tasks_too_small",
    "time_lost",
    "unmeasured",
    "use_processes",
    "workers_bound",
    "workers_limit",
]


# -- phrases that several findings share -----------------------------------------


def _at_once(width: int, tasks: int) -> str:
    """How many of the tasks could run side by side."""
    some = f"all {tasks}" if width == tasks else f"{width} of the {tasks}"
    return f"{some} tasks could run at the same time"


def _runs_at_most(scheduler: str, workers: int) -> str:
    """What the workers allow at once."""
    if workers == 1:
        who = "the sync scheduler" if scheduler == "sync" else f"{scheduler} with 1 worker"
        return f"{who} runs one task at a time"
    return f"{scheduler} with {workers} workers runs at most {workers} at once"


#: what saturated cores mean, whatever saturated them
_CORES_LIMIT = "the cores were the limit, not the scheduler, and more workers cannot help"


def _critical(path: str, several: bool) -> str:
    # a one-task path is just the longest task
    return f"the critical path {path}" if several else f"the longest task ({path})"


# -- the shape of the graph: both reports and explanations -----------------------


def nothing_to_run() -> str:
    """No task to run: nothing lazy was passed, or only persisted values.

    Examples
    --------
    >>> nothing_to_run()
    'there is nothing to run: no lazy value, or only persisted ones'
    """
    return "there is nothing to run: no lazy value, or only persisted ones"


def all_loaded(hits: int) -> str:
    """No task ran: the cache held every result the computes needed.

    Examples
    --------
    >>> all_loaded(3)
    'nothing ran: the cache held every result needed (3 hits)'
    """
    return f"nothing ran: the cache held every result needed ({counted(hits, 'hit')})"


def one_chain(tasks: int, path: str, span: float | None = None) -> str:
    """Every task waits for the one before; ``span``: the chain's measured time.

    Examples
    --------
    >>> one_chain(3, "load → clean → save", 1.5)  # doctest: +NORMALIZE_WHITESPACE
    'the 3 tasks form one chain (load → clean → save): each needs the one before, so no
     scheduler can run two of them at the same time; its 1.50 s is the best any scheduler
     can do'
    """
    text = (
        f"the {tasks} tasks form one chain ({path}): each needs the one before, so no "
        f"scheduler can run two of them at the same time"
    )
    if span is not None:
        text += f"; its {fmt(span)} is the best any scheduler can do"
    return text


def longest_chain(width: int, tasks: int, depth: int, path: str) -> str:
    """How many tasks could run at once, and the longest chain (before a run).

    Examples
    --------
    >>> longest_chain(2, 3, 2, "inc → add")
    '2 of the 3 tasks could run at the same time; the longest chain has 2 tasks (inc → add)'
    """
    return f"{_at_once(width, tasks)}; the longest chain has {counted(depth, 'task')} ({path})"


def span_bound(width: int, tasks: int, path: str, several: bool, span: float) -> str:
    """The critical path, not the workers, sets the best time (after a run).

    Examples
    --------
    >>> span_bound(2, 3, "inc → add", True, 2.0)  # doctest: +NORMALIZE_WHITESPACE
    '2 of the 3 tasks could run at the same time; the critical path inc → add takes 2.00 s,
     so 2.00 s is the best any scheduler can do, however many workers it has'
    """
    return (
        f"{_at_once(width, tasks)}; {_critical(path, several)} takes {fmt(span)}, "
        f"so {fmt(span)} is the best any scheduler can do, however many workers it has"
    )


def workers_bound(
    width: int,
    tasks: int,
    scheduler: str,
    workers: int,
    work: float,
    path: str,
    several: bool,
    span: float,
    best_with_width: float | None,
) -> str:
    """The workers, not the critical path, set the best time (after a run).

    ``best_with_width``: the best time with as many workers as the graph is
    wide, or None to give no advice to add workers.

    Examples
    --------
    >>> print(workers_bound(3, 3, "sync", 1, 3.0, "inc", False, 1.0, None))
    ... # doctest: +NORMALIZE_WHITESPACE
    all 3 tasks could run at the same time but the sync scheduler runs one task at a time:
     3.00 s of work needs at least 3.00 s (the longest task (inc) takes only 1.00 s)
    """
    more = "" if best_with_width is None else (
        f"; with {width} workers the best possible would be {fmt(best_with_width)}"
    )  # fmt: skip
    return (
        f"{_at_once(width, tasks)} but {_runs_at_most(scheduler, workers)}: {fmt(work)} of "
        f"work needs at least {fmt(work / workers)} ({_critical(path, several)} takes only "
        f"{fmt(span)}){more}"
    )


def workers_limit(scheduler: str, workers: int, tasks: int) -> str:
    """Fewer workers than the graph is wide (before a run).

    Examples
    --------
    >>> workers_limit("threads", 2, 9)  # doctest: +NORMALIZE_WHITESPACE
    'threads with 2 workers runs at most 2 at once, so the run takes at least as long as
     5 tasks one after another'
    """
    rounds = -(-tasks // workers)
    return (
        f"{_runs_at_most(scheduler, workers)}, so the run takes at least as long as "
        f"{rounds} tasks one after another"
    )


def enough_workers(width: int) -> str:
    """As many workers as the graph is wide (before a run).

    Examples
    --------
    >>> enough_workers(8)
    'more than 8 workers cannot help this graph'
    """
    return f"more than {width} workers cannot help this graph"


def tasks_too_small(
    typical: float,
    overhead: float,
    *,
    earlier: bool = False,
    loop_faster: bool = False,
    typical_on: str | None = None,
) -> str:
    """Tasks shorter than tarry's overhead per task.

    ``typical`` is the median task time of this run, or with ``earlier`` the
    median of the graph's tasks as an earlier profile measured their
    functions; ``loop_faster``: the run took longer than its tasks one after
    another; ``typical_on``: ``overhead`` is tarry's typical overhead on
    this scheduler, not one measured.

    Examples
    --------
    >>> tasks_too_small(2e-6, 30e-6, loop_faster=True)  # doctest: +NORMALIZE_WHITESPACE
    'the median task takes 2.00 µs, less than the per-task overhead of 30.0 µs, so running
     them in a plain loop would be faster: make each task do more work (for example a batch
     of items per task instead of one)'
    >>> print(tasks_too_small(1e-6, 30e-6, earlier=True, typical_on="processes"))
    ... # doctest: +NORMALIZE_WHITESPACE
    the median task takes 1.00 µs (as an earlier profile measured its function), less than
     tarry's typical per-task overhead on processes of 30.0 µs: make each task do more work
     (for example a batch of items per task instead of one)
    """
    took = f"the median task takes {fmt(typical)}"
    if earlier:
        took += " (as an earlier profile measured its function)"
    cost = "the per-task overhead" if typical_on is None else (
        f"tarry's typical per-task overhead on {typical_on}"
    )  # fmt: skip
    slower = ", so running them in a plain loop would be faster" if loop_faster else ""
    return (
        f"{took}, less than {cost} of {fmt(overhead)}{slower}: make each task "
        f"do more work (for example a batch of items per task instead of one)"
    )


# -- after a run: reports --------------------------------------------------------


def stopped_at(key: str, error: str | None, tasks: int) -> str:
    """A task's error ended a compute.

    Examples
    --------
    >>> stopped_at("load-1", "OSError: gone", 4)
    'a compute stopped at task load-1 (OSError: gone); the numbers cover the 4 tasks that ran'
    """
    return (
        f"a compute stopped at task {key} ({error}); the numbers cover the {tasks} tasks that ran"
    )


def no_timings(scheduler: str) -> str:
    """Tasks ran, but the scheduler gave no timings.

    Examples
    --------
    >>> print(no_timings("elsewhere"))  # doctest: +NORMALIZE_WHITESPACE
    the elsewhere scheduler reported no task timings, so work, span and the findings that
    need them are unknown
    """
    return (
        f"the {scheduler} scheduler reported no task timings, so work, span and the findings "
        f"that need them are unknown"
    )


def speedup(
    speedup: float, tasks: int, work: float, wall: float, most: float, workers: int | None
) -> str:
    """How much faster than one after another; ``workers`` None: several computes.

    Examples
    --------
    >>> speedup(1.5, 3, 3.0, 2.0, 1.5, 2)  # doctest: +NORMALIZE_WHITESPACE
    'speedup 1.5×: the 3 tasks take 3.00 s one after another (the work) and the run took
     2.00 s; the most with 2 workers is 1.5× (work / best possible)'
    """
    allows = "with their workers" if workers is None else f"with {counted(workers, 'worker')}"
    return (
        f"speedup {speedup:.1f}×: the {tasks} tasks take {fmt(work)} one after another (the "
        f"work) and the run took {fmt(wall)}; the most {allows} is {most:.1f}× (work / best "
        f"possible)"
    )


def compute_in_a_loop(computes: int, median_tasks: float) -> str:
    """Many computes of a few tasks each, one after another: compute() called in a loop.

    Examples
    --------
    >>> print(compute_in_a_loop(100, 1))  # doctest: +NORMALIZE_WHITESPACE
    100 computes ran one after another, with a median of 1 task each: each compute() waits
     for its own tasks before the next can start, so the workers never run the tasks of
     different computes side by side, and each compute pays its fixed cost; build all the
     lazy values first, then compute them together with one compute(*values) (work they
     share then runs once)
    """
    return (
        f"{computes} computes ran one after another, with a median of "
        f"{counted(round(median_tasks), 'task')} each: each compute() waits for its own tasks "
        f"before the next can start, so the workers never run the tasks of different computes "
        f"side by side, and each compute pays its fixed cost; build all the lazy values first, "
        f"then compute them together with one compute(*values) (work they share then runs "
        f"once)"
    )


def cores_per_task(per_task: float, cores: int, fits: int) -> str:
    """Each task kept several cores busy alone, so few fit on the machine at once.

    Examples
    --------
    >>> cores_per_task(1.4, 2, 1)[:55]
    'each task kept about 1.4 CPU cores busy on its own (pan'
    """
    return (
        f"each task kept about {per_task:.1f} CPU cores busy on its own (pandas and NumPy run "
        f"threads of their own), so this machine's {cores} cores can feed only "
        f"{counted(fits, 'such task')} at a time: {_CORES_LIMIT}"
    )


def cores_saturated(busy: float, cores: int, multithreaded: bool) -> str:
    """The process kept the cores busy; ``multithreaded``: no more workers than cores.

    Examples
    --------
    >>> cores_saturated(1.9, 2, False).endswith("so work and speedup are overstated")
    True
    """
    why = "; the tasks themselves run on several threads (as pandas and NumPy can)"
    return (
        f"the process kept {busy:.1f} of the machine's {cores} CPU cores busy on average: "
        f"{_CORES_LIMIT}. Task times include waiting for a core, so work and speedup are "
        f"overstated{why if multithreaded else ''}"
    )


def time_lost(lost: float, overhead: float) -> str:
    """The run took longer than the best possible, for no reason the numbers name.

    Examples
    --------
    >>> time_lost(0.5, 0.001)[:62]
    'the run took 500 ms longer than the best possible (1.00 ms per'
    """
    return (
        f"the run took {fmt(lost)} longer than the best possible ({fmt(overhead)} per task): "
        f"time spent starting workers, moving data between them and scheduling, or tasks that "
        f"waited for each other"
    )


def covers_longest(shown: int, computes: int) -> str:
    """Per-compute findings were given for the longest computes only.

    Examples
    --------
    >>> covers_longest(3, 5)
    '(findings above cover the 3 longest of 5 computes)'
    """
    return f"(findings above cover the {shown} longest of {computes} computes)"


def gil_bound(in_use: float, could_use: int, running: float, cpu_time: float | None) -> str:
    """Threads ran pure Python; ``cpu_time`` given when the tasks overlapped.

    Examples
    --------
    >>> gil_bound(0.95, 2, 1.9, 0.6).endswith("use scheduler='processes'; their times include "
    ...     "waiting for the GIL, so work and speedup are overstated: their CPU time is 600 ms")
    True
    """
    overstated = "" if cpu_time is None else (
        "; their times include waiting for the GIL, so work and speedup are overstated: their "
        f"CPU time is {fmt(cpu_time)}"
    )  # fmt: skip
    return (
        f"tasks held the GIL {min(in_use, 1.0):.0%} of the time they were running: together "
        f"they used {in_use:.1f} CPU core although {could_use} could have run at once "
        f"({running:.1f} did on average), so threads cannot run them in parallel: use "
        f"scheduler='processes'{overstated}"
    )


def use_processes(on_cpu: float, could_run: int, cores: int) -> str:
    """One worker ran tasks that compute: processes could run several.

    Examples
    --------
    >>> use_processes(0.9, 2, 2)[:50]
    'tasks spent 90% of their time computing; up to 2 c'
    """
    return (
        f"tasks spent {on_cpu:.0%} of their time computing; up to {could_run} could run at "
        f"once on this machine's {cores} cores with scheduler='processes' (threads help only "
        f"code that releases the GIL, such as NumPy, pandas or I/O)"
    )


def more_workers(waiting: float, suggested: int) -> str:
    """Tasks mostly waited: more workers than cores would help.

    Examples
    --------
    >>> more_workers(0.95, 16).endswith("than CPU cores would help, e.g. num_workers=16")
    True
    """
    return (
        f"tasks spent {waiting:.0%} of their time waiting (sleep, I/O, locks) rather than "
        f"computing: more workers than CPU cores would help, e.g. num_workers={suggested}"
    )


# -- before a run: explanations with times from an earlier profile -------------


def estimate(work: float, span: float, best: float, workers: int, by_chain: bool) -> str:
    """The best possible time predicted from earlier measurements.

    Examples
    --------
    >>> estimate(3.0, 2.0, 2.0, 2, True)  # doctest: +NORMALIZE_WHITESPACE
    'from earlier measurements: work ≈ 3.00 s, span ≈ 2.00 s, so the best possible time
     with 2 workers is ≈ 2.00 s, set by the longest chain'
    """
    bound = "the longest chain" if by_chain else "the number of workers"
    return (
        f"from earlier measurements: work ≈ {fmt(work)}, span ≈ {fmt(span)}, so the best "
        f"possible time with {counted(workers, 'worker')} is ≈ {fmt(best)}, set by {bound}"
    )


def unmeasured(names: Sequence[str]) -> str:
    """Functions the earlier profile never saw.

    Examples
    --------
    >>> unmeasured(["double", "half"])
    'no times were measured for double, half: the estimates count those tasks as instant'
    """
    return (
        f"no times were measured for {', '.join(names)}: the estimates count those tasks as instant"
    )

"""The ``tarry`` command line: ``tarry tutorial`` runs the seed tutorial.

Also reachable as ``python -m tarry``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tarry",
        description="tarry turns function calls and for-loops into a lazy task graph "
        "and runs it in parallel.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    tutorial = commands.add_parser(
        "tutorial",
        help="run the dask.delayed tutorial's exercises sequentially and with tarry",
        description="Run every exercise of the dask.delayed tutorial (inc/add, the for-loop, "
        "the for-loop with control flow, the mean departure delay per airport with pandas) "
        "first sequentially, then with tarry; print a table of times and speed-ups, write "
        "each exercise's task graph and timeline, and explain the speed-ups.",
    )
    tutorial.add_argument(
        "--scheduler",
        default="threads",
        help="tarry scheduler to run the exercises on: threads (default), sync, or any "
        "other installed backend (e.g. processes)",
    )
    tutorial.add_argument(
        "--workers",
        type=int,
        default=None,
        help="number of workers (default: the usable CPUs; threads add more while tasks wait)",
    )
    tutorial.add_argument(
        "--sleep",
        type=float,
        default=1.0,
        help="seconds each toy function (inc, add, double) sleeps, as in the tutorial "
        "(default 1.0; try 0.1 for a quick look)",
    )
    tutorial.add_argument(
        "--small",
        action="store_true",
        help="use 1,000 flights per file instead of the ~260,000 of the full stand-in data",
    )
    tutorial.add_argument(
        "--output",
        type=Path,
        default=Path("tarry-output"),
        help="folder for the task-graph pictures and timelines (default: ./tarry-output)",
    )
    tutorial.add_argument(
        "--data",
        type=Path,
        default=Path("data") / "nycflights",
        help="folder where the flight data is generated once and cached "
        "(default: ./data/nycflights, as in the tutorial)",
    )
    return parser


@dataclass
class Outcome:
    """What running one exercise both ways gave."""

    title: str
    sequential: float
    parallel: float
    critical_path: float
    same: bool
    explanation: str
    files: list[Path]


def run_tutorial(args: argparse.Namespace) -> list[Outcome]:
    """Prepare the data, run every exercise both ways; print as it goes.

    With the default threads scheduler, the groupby also runs on (warm)
    processes: its explanation is about what threads can and cannot do.
    """
    from tarry._tutorial.exercises import exercises, flight_files
    from tarry._tutorial.flights import prepare_flights

    print(f"Preparing the flight data in {args.data} (once; cached afterwards)")
    prepare_flights(args.data, rows_per_file=1000 if args.small else None)
    args.output.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for exercise in exercises(args.sleep, flight_files(args.data)):
        outcomes.append(_run_both_ways(exercise, args, args.scheduler, exercise.title))
        if exercise.name == "groupby" and args.scheduler == "threads":
            import tarry

            tarry.compute(exercise.lazy(), scheduler="processes")  # workers import pandas
            title = f"{exercise.title}, on processes (warm)"
            outcomes.append(_run_both_ways(exercise, args, "processes", title, "groupby-processes"))
    return outcomes


def _run_both_ways(
    exercise: Any, args: argparse.Namespace, scheduler: str, title: str, name: str = ""
) -> Outcome:
    import tarry
    from tarry._tutorial.exercises import same_result

    print(f"- {title}: sequential ...", end=" ", flush=True)
    start = time.perf_counter()
    expected = exercise.sequential()
    sequential = time.perf_counter() - start
    print(f"{sequential:.2f} s; tarry ...", end=" ", flush=True)
    lazy = exercise.lazy()
    with tarry.profile() as prof:
        start = time.perf_counter()
        (result,) = tarry.compute(lazy, scheduler=scheduler, num_workers=args.workers)
        parallel = time.perf_counter() - start
    print(f"{parallel:.2f} s")
    report = prof.report()
    files = _pictures(lazy, prof, args.output / (name or exercise.name))
    return Outcome(title, sequential, parallel, report.span, same_result(expected, result),
                   str(report), files)  # fmt: skip


def _pictures(lazy: Any, prof: Any, stem: Path) -> list[Path]:
    """Write the task graph and the timeline; say why if one cannot be drawn."""
    files = []
    graph = stem.with_name(stem.name + "-graph.png")
    try:
        lazy.visualize(filename=graph)
        files.append(graph)
    except RuntimeError as exc:  # no Graphviz `dot`: the message says how to install it
        print(f"  (no task-graph picture: {exc})")
    timeline = stem.with_name(stem.name + "-timeline.png")
    prof.timeline(filename=timeline)
    files.append(timeline)
    return files


def format_table(outcomes: Sequence[Outcome]) -> str:
    """The results as a Markdown table.

    Examples
    --------
    >>> row = Outcome("inc/add", 3.0, 2.01, 2.0, True, "", [])
    >>> print(format_table([row]))
    | exercise | sequential | tarry | best possible (critical path) | speed-up | same result |
    |---|---|---|---|---|---|
    | inc/add | 3.00 s | 2.01 s | 2.00 s | 1.5x | yes |
    """
    header = "| exercise | sequential | tarry | best possible (critical path) | speed-up |"
    lines = [header + " same result |", "|---|---|---|---|---|---|"]
    for o in outcomes:
        lines.append(
            f"| {o.title} | {o.sequential:.2f} s | {o.parallel:.2f} s | {o.critical_path:.2f} s "
            f"| {o.sequential / o.parallel:.1f}x | {'yes' if o.same else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tarry`` command."""
    args = _parser().parse_args(argv)
    if args.workers is not None and args.workers < 1:
        _parser().error("--workers must be at least 1")
    if args.sleep < 0:
        _parser().error("--sleep must be 0 or more")
    outcomes = run_tutorial(args)
    print()
    print(format_table(outcomes))
    for o in outcomes:
        print(f"\n## Why: {o.title}\n{o.explanation}")
    print(f"\nPictures: {args.output.resolve()}")
    for o in outcomes:
        for f in o.files:
            print(f"  {f}")
    return 0 if all(o.same for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

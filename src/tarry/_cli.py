"""The ``tarry`` command line: ``tarry tutorial`` runs the seed tutorial.

``tarry cache ls | du | clear`` lists, measures and clears a cache of
results kept across runs (:mod:`tarry._cache.command`).

Also reachable as ``python -m tarry``. Every argument is checked before any
work starts (a bad one gets the subcommand's usage), a missing extra is
named with its pip command, and Ctrl-C ends the command with "interrupted"
and exit status 130, as a shell expects.

Where files go: the flight data into the user's cache folder (see
:func:`default_data_root`), the full and the ``--small`` data side by side,
and beside them, while the groupby runs with a cache, that cache;
pictures only into the folder ``--output`` names; the notebook only where
``--notebook`` says.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from tarry import _extras
from tarry._cache import command as cache_command
from tarry._tutorial.exercises import Outcome

__all__ = ["main"]

#: exit status after Ctrl-C: 128 + SIGINT, what shells report for it
INTERRUPTED: Final = 130
#: exit status when tarry cannot do the work asked (an extra is missing)
FAILED: Final = 1
#: the file ``--notebook`` writes when given no path
NOTEBOOK: Final = "tarry-tutorial.ipynb"


def _parser() -> argparse.ArgumentParser:
    from tarry import __version__

    parser = argparse.ArgumentParser(
        prog="tarry",
        description="tarry turns function calls and for-loops into a lazy task graph "
        "and runs it in parallel.",
    )
    parser.add_argument("--version", action="version", version=f"tarry {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    tutorial = commands.add_parser(
        "tutorial",
        help="run the dask.delayed tutorial's exercises sequentially and with tarry",
        description="Run every exercise of the dask.delayed tutorial (inc/add, the for-loop, "
        "the for-loop with control flow, the mean departure delay per airport with pandas) "
        "first sequentially, then with tarry; print a table of times and speed-ups and explain "
        "them. Needs the tutorial extra: pip install 'tarry[tutorial]'.",
    )
    tutorial.add_argument(
        "--scheduler",
        type=_scheduler,
        default="threads",
        help="tarry scheduler to run the exercises on: threads (default), sync, processes, "
        "ray (starts a local Ray cluster), or dask (starts a dask.distributed LocalCluster)",
    )
    tutorial.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="number of workers (default: the usable CPUs; threads add more while tasks wait)",
    )
    tutorial.add_argument(
        "--sleep",
        type=_seconds,
        default=1.0,
        help="seconds each toy function (inc, add, double) sleeps, as in the tutorial "
        "(default 1.0; try 0.1 for a quick look)",
    )
    tutorial.add_argument(
        "--small",
        action="store_true",
        help="use 1,000 flights per file instead of the ~260,000 of the full stand-in data "
        "(kept apart from the full data: neither overwrites the other)",
    )
    tutorial.add_argument(
        "--output",
        type=Path,
        default=None,
        help="write each exercise's task graph and timeline (PNG) into this folder "
        "(default: no pictures)",
    )
    tutorial.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder for the generated flight data, made once and reused: it goes into "
        "DATA/nycflights, or DATA/nycflights-small with --small (default DATA: the user "
        "cache folder, e.g. ~/.cache/tarry on Linux)",
    )
    tutorial.add_argument(
        "--notebook",
        nargs="?",
        const=Path(NOTEBOOK),
        type=Path,
        default=None,
        metavar="PATH",
        help=f"write the tutorial as a Jupyter notebook to PATH (default ./{NOTEBOOK}) "
        "and stop; it never overwrites a file",
    )
    cache_command.add_parser(commands)
    return parser


# -- arguments: each checked by argparse, so a bad one gets the subcommand's usage ---------


def _positive_int(text: str) -> int:
    """``--workers``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _seconds(text: str) -> float:
    """``--sleep``: seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def _scheduler(text: str) -> str:
    """``--scheduler``: a scheduler tarry knows whose packages are installed."""
    from tarry._schedule import SCHEDULERS

    if text not in SCHEDULERS:
        raise argparse.ArgumentTypeError(
            f"unknown scheduler {text!r}; choose one of: {', '.join(SCHEDULERS)}"
        )
    needs = _extras.SCHEDULERS.get(text)
    try:
        if needs is not None:
            needs.check()
    except _extras.MissingExtraError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def default_data_root() -> Path:
    """The user's cache folder for tarry: ``~/.cache/tarry`` on Linux (``$XDG_CACHE_HOME``).

    From platformdirs, which follows each system's conventions (XDG on
    Linux, ``~/Library/Caches/tarry`` on macOS, ``%LOCALAPPDATA%\\tarry\\Cache``
    on Windows). Only ``tarry tutorial`` needs it, which needs the tutorial
    extra, platformdirs included, in any case.
    """
    import platformdirs

    return Path(platformdirs.user_cache_dir("tarry", appauthor=False))


def data_folder(root: Path | None, small: bool) -> Path:
    """Where the flight data of one size goes: the full and the small data apart.

    Examples
    --------
    >>> data_folder(Path("d"), small=False).as_posix(), data_folder(Path("d"), True).as_posix()
    ('d/nycflights', 'd/nycflights-small')
    """
    return (root or default_data_root()) / ("nycflights-small" if small else "nycflights")


# -- the tutorial ----------------------------------------------------------------------------


def run_tutorial(args: argparse.Namespace) -> list[Outcome]:
    """Prepare the data, run every exercise both ways; print as it goes.

    With the default threads scheduler, the groupby also runs on (warm)
    processes: its explanation is about what threads can and cannot do.
    Then it runs twice with a cache (:mod:`tarry._tutorial.cached`).
    """
    from tarry._tutorial.exercises import exercises, flight_files
    from tarry._tutorial.flights import prepare_flights

    folder = data_folder(args.data, args.small)
    print(f"Flight data: {folder} (generated once, then reused)")
    prepare_flights(folder, rows_per_file=1000 if args.small else None)
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
    outcomes = []
    with _engine(args.scheduler, args.workers):
        for exercise in exercises(args.sleep, flight_files(folder)):
            outcomes.append(_run_both_ways(exercise, args, args.scheduler, exercise.title))
            if exercise.name == "groupby" and args.scheduler == "threads":
                import tarry

                tarry.compute(exercise.lazy(), scheduler="processes")  # workers import pandas
                title = f"{exercise.title}, on processes (warm)"
                outcomes.append(
                    _run_both_ways(exercise, args, "processes", title, "groupby-processes")
                )
            if exercise.name == "groupby":  # again, twice with a cache: stores, then loads
                from tarry._tutorial.cached import groupby_with_cache

                outcomes += groupby_with_cache(
                    exercise, flight_files(folder), args.scheduler, args.workers, folder.parent
                )
    return outcomes


@contextlib.contextmanager
def _engine(scheduler: str, workers: int | None) -> Iterator[None]:
    """For ``dask``, a LocalCluster and its Client for the whole tutorial; else nothing.

    tarry's dask scheduler runs on an existing Client; the tutorial has none,
    so it starts one (Ray's local cluster tarry starts by itself).
    """
    if scheduler != "dask":
        yield
        return
    import distributed

    import tarry

    print("Starting a dask.distributed LocalCluster for --scheduler dask")
    with (
        distributed.LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,  # type: ignore[no-untyped-call]
        tarry.config.set(dask_client=client),
    ):
        yield


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
    files = (
        [] if args.output is None else _pictures(lazy, prof, args.output / (name or exercise.name))
    )
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


def write_notebook(path: Path) -> Path:
    """Copy the tutorial notebook shipped in the package to ``path``; never overwrite.

    Raises
    ------
    FileExistsError
        When ``path`` exists.
    """
    from importlib.resources import files

    data = files("tarry._tutorial").joinpath("tutorial.ipynb").read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "xb") as file:  # "x": an existing notebook may hold the user's work
            file.write(data)
    except FileExistsError:
        raise FileExistsError(
            f"{path} exists already and is left as it is; name another file: "
            f"tarry tutorial --notebook OTHER.ipynb"
        ) from None
    return path


def _tutorial(args: argparse.Namespace) -> int:
    if args.notebook is not None:
        written = write_notebook(args.notebook)
        print(f"Wrote the tutorial notebook to {written.resolve()}")
        print(f"Open it with: jupyter lab {written}  (it needs pip install 'tarry[tutorial]')")
        return 0
    _extras.TUTORIAL.check()
    outcomes = run_tutorial(args)
    print()
    print(format_table(outcomes))
    for o in outcomes:
        print(f"\n## Why: {o.title}\n{o.explanation}")
    if args.output is None:
        print("\nPictures: none written; add --output FOLDER for each exercise's task graph "
              "and timeline")  # fmt: skip
    else:
        print(f"\nPictures: {args.output.resolve()}")
        for o in outcomes:
            for f in o.files:
                print(f"  {f}")
    return 0 if all(o.same for o in outcomes) else 1


def tolerate_unencodable_output() -> None:
    """Print what the console cannot show as ``?`` rather than fail on it.

    The explanations use ``→`` and ``×``; a Windows console whose output is
    redirected writes in its legacy code page (cp1252, say), where printing
    them would raise UnicodeEncodeError in the middle of the tutorial.
    """
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tarry`` command; returns the exit status."""
    tolerate_unencodable_output()
    args = _parser().parse_args(argv)
    try:
        return cache_command.run(args) if args.command == "cache" else _tutorial(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return INTERRUPTED
    except (_extras.MissingExtraError, FileExistsError) as exc:
        print(f"tarry: {exc}", file=sys.stderr)
        return FAILED


if __name__ == "__main__":
    sys.exit(main())

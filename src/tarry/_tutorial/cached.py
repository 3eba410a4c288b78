"""The tutorial's groupby again, twice with a cache: the first run stores, the second loads.

``tarry tutorial`` runs this after the groupby exercise
(:func:`groupby_with_cache`). The graph is the tutorial's solution
(:func:`cached_mean_delay`), built with ``tarry.config.set(pure=True)`` so
that its tasks may be cached (a task is cached only when its result
depends on its inputs alone; ``read_csv`` of a file counts as pure here
because the tutorial's files never change while it runs), and with each
file's DataFrame and groupby in a ``tarry.annotate(cache=False)`` block:
they are large and quick to make again, so they are keyed but never
stored, and only the per-file sums and counts and the result are. The
cache is a new folder beside the flight data, removed at the end, so every
tutorial starts cold. Between the two runs, :func:`tarry.explain` says what
the second will load, and why; the second run's profile counts its hits.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tarry
from tarry._cache.tally import format_bytes
from tarry._tools.report import Report
from tarry._tools.text import format_seconds
from tarry._tutorial.exercises import Exercise, Outcome, same_result

__all__ = ["cached_mean_delay", "groupby_with_cache"]


def cached_mean_delay(filenames: Sequence[str]) -> tarry.Delayed[Any]:
    """The mean departure delay per airport, built to be cached.

    Examples
    --------
    >>> lazy = cached_mean_delay(["a.csv", "b.csv"])
    >>> plan = tarry.explain(lazy, cache=tempfile.mkdtemp()).cache
    >>> for name, reason in sorted({(t.name, t.reason.split(" (")[0]) for t in plan.tasks}):
    ...     print(f"{name:9} {reason}")
    count     new
    getattr   not cacheable: cache=False
    groupby   not cacheable: cache=False
    read_csv  not cacheable: cache=False
    sum       new
    truediv   new
    """
    import pandas as pd

    sums, counts = [], []
    with tarry.config.set(pure=True):  # every task keyed by what it computes
        for fn in filenames:
            with tarry.annotate(cache=False):  # large, quick to make again: never stored
                delays = tarry.delayed(pd.read_csv)(fn).groupby("Origin").DepDelay
            sums.append(delays.sum())
            counts.append(delays.count())
        mean: tarry.Delayed[Any] = tarry.delayed(sum)(sums) / tarry.delayed(sum)(counts)
    return mean


def groupby_with_cache(
    exercise: Exercise,
    filenames: Sequence[str],
    scheduler: str,
    workers: int | None,
    where: Path,
) -> list[Outcome]:
    """Run ``exercise`` (the groupby) sequentially, then twice with a new cache in ``where``.

    Prints its progress as the other exercises do, and returns a row for
    each of the two cached runs.
    """
    title = f"{exercise.title}, with a cache"
    print(f"- {title}: sequential ...", end=" ", flush=True)
    start = time.perf_counter()
    expected = exercise.sequential()
    sequential = time.perf_counter() - start
    lazy = cached_mean_delay(filenames)
    with tempfile.TemporaryDirectory(prefix="tarry-tutorial-cache-", dir=where) as folder:
        print(f"{sequential:.2f} s; tarry, first run ...", end=" ", flush=True)
        first, first_result, first_report = _run(lazy, scheduler, workers, folder)
        written = _size(folder)
        plan = tarry.explain(lazy, scheduler=scheduler, num_workers=workers, cache=folder).cache
        print(f"{first:.2f} s; second run ...", end=" ", flush=True)
        second, second_result, second_report = _run(lazy, scheduler, workers, folder)
        print(f"{second:.2f} s")
    fmt = format_seconds
    stored = (
        f"The first run computed every task, as before, and stored each cacheable result "
        f"in a new cache as soon as it had it: tarry.compute(mean_delay, cache=folder) took "
        f"{fmt(first)} and wrote {format_bytes(written)}. Its profile counts what the cache "
        f"did:\n  cache         {first_report.cache}\n"
        f"The DataFrames that read_csv returns and their groupby objects were built in a "
        f"tarry.annotate(cache=False) block: large and quick to make again, they are keyed "
        f"(so what reads them is cached) but never written. Only the per-file sums and "
        f"counts and the result are. A cache pays where results are slow to compute and "
        f"quick to write."
    )
    loaded = (
        f"Before the second run, tarry.explain(mean_delay, cache=folder) said what it would "
        f"do, without running anything:\n{plan}\n"
        f"The result itself was stored, so the second run loaded it and ran none of the "
        f"groupby's tasks: {fmt(second)} instead of {fmt(first)}. Its profile:\n"
        f"  cache         {second_report.cache}\n"
        f"(saved: how long making the loaded result took when it was stored, the "
        f"tasks beneath it included.) Edit a step, or mark a task impure, and explain() "
        f"says which tasks run again, and why."
    )
    return [
        Outcome(f"{title}: first run, stores", sequential, first, first_report.span,
                same_result(expected, first_result), stored, []),
        Outcome(f"{title}: second run, loads", sequential, second, second_report.span,
                same_result(expected, second_result), loaded, []),
    ]  # fmt: skip


def _size(folder: str) -> int:
    """Bytes of the files under ``folder``."""
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(folder)
        for name in names
    )


def _run(lazy: Any, scheduler: str, workers: int | None, folder: str) -> tuple[float, Any, Report]:
    """Seconds the compute of ``lazy`` with the cache in ``folder`` took, its result, its report."""
    with tarry.profile() as prof:
        start = time.perf_counter()
        (result,) = tarry.compute(lazy, scheduler=scheduler, num_workers=workers, cache=folder)
        seconds = time.perf_counter() - start
    return seconds, result, prof.report()

"""The cache on the backends whose tasks run in other processes: processes, Dask, Ray.

On each, the workers write the results they compute straight to the store
(the caller never pickles one for it), a second run runs nothing, and a
run that failed resumes from what its workers stored. Dask's store is an
fsspec ``file://`` URL, as a cluster's shared store would be.

The functions live in this module: every worker can import it (the tests
directory is on their path).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from tarry import delayed

CALLER = os.getpid()


class Tracked:
    """A result that notes, in a file, which process pickles it, and whether for the cache."""

    def __init__(self, value: int, log: str) -> None:
        self.value = value
        self.log = log

    def __reduce__(self) -> tuple[Any, ...]:
        frame: FrameType | None = sys._getframe(1)
        for_cache = False
        while frame is not None and not for_cache:  # a store's save, or what calls it
            for_cache = str(frame.f_globals.get("__name__")).startswith("tarry._cache.")
            frame = frame.f_back
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()} {'cache' if for_cache else 'other'}\n")
        return (Tracked, (self.value, self.log))


def noted(folder: str, name: str) -> None:
    with open(os.path.join(folder, "calls"), "a") as f:
        f.write(f"{name}\n")


def make(folder: str, n: int) -> Tracked:
    noted(folder, "make")
    return Tracked(n, os.path.join(folder, "pickled"))


def grow(folder: str, x: Tracked) -> Tracked:
    noted(folder, "grow")
    return Tracked(x.value * 10, x.log)


def finish(folder: str, x: Tracked, y: Tracked) -> Tracked:
    noted(folder, "finish")
    if os.path.exists(os.path.join(folder, "stop")):
        raise RuntimeError("stopped on purpose")
    return Tracked(x.value + y.value, x.log)


class Run:
    """The graph ``finish(grow(make(2)), make(3))`` over a folder that logs its calls."""

    def __init__(self, folder: Path, scheduler: str) -> None:
        self.folder = folder
        self.scheduler = scheduler
        # Dask's workers reach the store through fsspec, as a cluster would
        self.cache = f"file://{folder}/cache" if scheduler == "dask" else str(folder / "cache")

    def compute(self) -> int:
        where = str(self.folder)
        lazy = {f.__name__: delayed(f, pure=True) for f in (make, grow, finish)}
        graph = lazy["finish"](
            where, lazy["grow"](where, lazy["make"](where, 2)), lazy["make"](where, 3)
        )
        result: Tracked = graph.compute(scheduler=self.scheduler, cache=self.cache)
        return result.value

    def calls(self) -> list[str]:
        """The functions run since the last call, sorted."""
        return sorted(self._taken("calls"))

    def pickled_for_the_cache(self) -> list[int]:
        """The processes that pickled a result for the cache since the last call."""
        return [int(line.split()[0]) for line in self._taken("pickled") if line.endswith("cache")]

    def _taken(self, name: str) -> list[str]:
        path = self.folder / name
        lines = path.read_text().splitlines() if path.exists() else []
        path.unlink(missing_ok=True)
        return lines


def test_workers_store_the_results_and_a_second_run_runs_nothing(
    remote_scheduler: str, tmp_path: Path
) -> None:
    run = Run(tmp_path, remote_scheduler)
    assert run.compute() == 23
    assert run.calls() == ["finish", "grow", "make", "make"]
    writers = run.pickled_for_the_cache()
    assert len(writers) == 4  # each result, once
    assert CALLER not in writers  # a worker, never the caller
    assert run.compute() == 23
    assert run.calls() == []


def test_a_failed_run_resumes_from_what_its_workers_stored(
    remote_scheduler: str, tmp_path: Path
) -> None:
    run = Run(tmp_path, remote_scheduler)
    (tmp_path / "stop").touch()
    with pytest.raises(RuntimeError, match="stopped on purpose"):
        run.compute()
    assert run.calls() == ["finish", "grow", "make", "make"]
    writers = run.pickled_for_the_cache()
    assert len(writers) == 3
    assert CALLER not in writers
    (tmp_path / "stop").unlink()
    assert run.compute() == 23
    assert run.calls() == ["finish"]

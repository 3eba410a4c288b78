"""dask collections inside tarry: merge their graphs into the run, or compute them with dask first?

Two designs for a dask collection met in a tarry task's arguments (issue 15):

* **merge** (what tarry does): the collection's tasks become tarry tasks,
  run by tarry's scheduler with the rest of the graph;
* **dask first**: one tarry task per collection calls ``dask.compute`` on
  it (dask's threaded scheduler), and hands the value on.

Two cases, as the issue names them: ``delayed(total)(part)`` for the 100
parts of a 2,000 x 2,000 dask array (``arr.to_delayed()``), and
``tarry.compute(arr)`` of the whole array; dask's own ``dask.compute`` of
the same values as the yardstick. Each is timed from building the values to
having the results, best of ``--repeat`` runs, on tarry's ``threads`` and
``processes`` schedulers.

    python benchmarks/bench_dask_interop.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import tarry
from tarry import delayed

# dask's API is untyped: Any, for mypy --strict
dask: Any = importlib.import_module("dask")
da: Any = importlib.import_module("dask.array")


class Box:
    """Hides a collection from tarry's argument traversal (the dask-first design)."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection


def with_dask(box: Box) -> Any:
    (value,) = dask.compute(box.collection, scheduler="threads")
    return value


def total(x: Any) -> Any:
    return float(np.sum(x))


def array() -> Any:
    return da.random.RandomState(0).random((2000, 2000), chunks=(200, 200)) * 2 + 1


def parts_merged(scheduler: str) -> Any:
    parts = array().to_delayed().ravel()
    return tarry.compute([delayed(total)(p) for p in parts], scheduler=scheduler)[0]


def parts_dask_first(scheduler: str) -> Any:
    parts = array().to_delayed().ravel()
    values = [delayed(total)(delayed(with_dask)(Box(p))) for p in parts]
    return tarry.compute(values, scheduler=scheduler)[0]


def parts_dask(scheduler: str) -> Any:
    parts = array().to_delayed().ravel()
    return dask.compute([dask.delayed(total)(p) for p in parts], scheduler="threads")[0]


def whole_merged(scheduler: str) -> Any:
    return tarry.compute(array(), scheduler=scheduler)[0]


def whole_dask_first(scheduler: str) -> Any:
    return delayed(with_dask)(Box(array())).compute(scheduler=scheduler)


def whole_dask(scheduler: str) -> Any:
    return dask.compute(array(), scheduler="threads")[0]


def best(run: Callable[[str], Any], scheduler: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run(scheduler)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    cases = {
        "100 parts, delayed(total)(part)": (parts_merged, parts_dask_first, parts_dask),
        "tarry.compute(array)": (whole_merged, whole_dask_first, whole_dask),
    }
    print("| case | tarry scheduler | merge | dask first | dask.compute alone |")
    print("|---|---|---|---|---|")
    for name, runs in cases.items():
        for scheduler in ("threads", "processes"):
            for run in runs:
                run(scheduler)  # warm: worker processes, imports
            merged, first, alone = (best(run, scheduler, repeat) for run in runs)
            print(f"| {name} | {scheduler} | {merged:.3f} s | {first:.3f} s | {alone:.3f} s |")


if __name__ == "__main__":
    main()

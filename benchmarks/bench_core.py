"""tarry vs dask.delayed, side by side in one process, on the same graphs.

Prints µs per node to build and µs per task to compute (sync and threads) for
the graph shapes of the core issue, with the dask/tarry ratio, plus tarry's
fixed cost per compute() and memory per pending task. Every figure is the
median of several repeats; the machine is shared and noisy, so read ratios.

Run: ``python benchmarks/bench_core.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from typing import Any

import tarry


def _dask() -> Any:
    """dask, untyped: the benchmark calls it like a user would."""
    return importlib.import_module("dask")


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def total(values: list[int]) -> int:
    return sum(values)


# -- graph shapes, written once against either library's `delayed` ------------


def fan_in(delayed: Any, n: int) -> Any:
    """n independent calls feeding one reducer that takes them as a list."""
    lazy_inc = delayed(inc)
    return delayed(total)([lazy_inc(i) for i in range(n)])


def tree(delayed: Any, n: int) -> Any:
    """n leaves combined pairwise."""
    lazy_inc, lazy_add = delayed(inc), delayed(add)
    level = [lazy_inc(i) for i in range(n)]
    while len(level) > 1:
        paired = [lazy_add(a, b) for a, b in zip(level[::2], level[1::2], strict=False)]
        level = paired + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def chain(delayed: Any, n: int) -> Any:
    """n calls, each taking the previous one's output."""
    lazy_inc = delayed(inc)
    value = lazy_inc(0)
    for _ in range(n - 1):
        value = lazy_inc(value)
    return value


def groupby(delayed: Any, n: int) -> Any:
    """The seed's pattern: per file a chain of method calls, then sums and a division."""
    sums, counts = [], []
    for i in range(n):
        frame = delayed(dict.fromkeys)(["EWR", "JFK", "LGA"], i)
        sums.append(frame.get("EWR"))
        counts.append(frame.get("JFK"))
    return delayed(sum)(sums) / delayed(max)(delayed(sum)(counts), 1)


SHAPES: dict[str, Callable[[Any, int], Any]] = {
    "fan-in": fan_in,
    "tree": tree,
    "chain": chain,
    "groupby": groupby,
}


def count_tasks(lib: str, obj: Any) -> int:
    if lib == "tarry":
        return len(obj.graph)
    return len(obj.__dask_graph__())


def median_time(func: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(lib: str, shape: str, n: int, repeats: int) -> dict[str, float]:
    if lib == "tarry":
        delayed: Any = tarry.delayed

        def compute(obj: Any, scheduler: str) -> Any:
            return tarry.compute(obj, scheduler=scheduler)
    else:
        dask = _dask()
        delayed = dask.delayed

        def compute(obj: Any, scheduler: str) -> Any:
            return dask.compute(obj, scheduler=scheduler)

    build = SHAPES[shape]
    obj = build(delayed, n)
    tasks = count_tasks(lib, obj)
    row = {"tasks": float(tasks)}
    row["build"] = median_time(lambda: build(delayed, n), repeats) / tasks * 1e6
    for scheduler in ("sync", "threads"):
        row[scheduler] = median_time(partial(compute, obj, scheduler), repeats) / tasks * 1e6
    return row


def fixed_cost(repeats: int) -> tuple[float, float]:
    """µs per compute() of a one-task graph, tarry and dask (threads)."""
    dask = _dask()
    out = []
    for delayed, compute in ((tarry.delayed, tarry.compute), (dask.delayed, dask.compute)):
        obj = delayed(inc)(1)
        for _ in range(50):
            compute(obj, scheduler="threads")
        n = 2000

        def many(obj: Any = obj, compute: Any = compute, n: int = n) -> None:
            for _ in range(n):
                compute(obj, scheduler="threads")

        out.append(median_time(many, repeats) / n * 1e6)
    return out[0], out[1]


def memory_per_task(n: int) -> float:
    """Bytes per task held by a built n-task tree plus its planned run."""
    from tarry._schedule.core import Run

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    obj = tree(tarry.delayed, n // 2)
    run = Run([obj._task])
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    tasks = run.remaining
    del obj, run
    return used / tasks


def fold(delayed: Any, n: int) -> Any:
    """n/2 steps of ``acc = add(inc(i), acc)``: planning ranks it twice (heavier input first)."""
    lazy_inc, lazy_add = delayed(inc), delayed(add)
    acc = lazy_inc(0)
    for i in range(n // 2):
        acc = lazy_add(lazy_inc(i), acc)
    return acc


def planning_cost(n: int, repeats: int) -> dict[str, float]:
    """µs per task to plan (construct ``Run``) a chain, a fan-in and a fold of about n tasks."""
    from tarry._schedule.core import Run

    out = {}
    for shape, build in (("chain", chain), ("fan-in", fan_in), ("fold", fold)):
        targets = [build(tarry.delayed, n)._task]
        size = len(Run(targets).tasks)
        out[shape] = median_time(partial(Run, targets), repeats) / size * 1e6
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per figure (median)")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    both = {"fan-in": 5_000, "tree": 10_000, "chain": 2_000, "groupby": 1_000}
    big = {"fan-in": 100_000, "tree": 100_000, "chain": 100_000, "groupby": 20_000}
    if args.quick:
        both = {k: v // 10 for k, v in both.items()}
        big = {k: v // 10 for k, v in big.items()}

    print(f"python {sys.version.split()[0]}, tarry {tarry.__version__}", end="")
    print(f", dask {_dask().__version__}; medians of {repeats}")
    header = (
        "| shape | tasks | build µs/node tarry | dask | ratio "
        "| sync µs/task tarry | dask | ratio | threads µs/task tarry | dask | ratio |"
    )
    print(header)
    print("|" + "---|" * 12)
    for shape, n in both.items():
        t = measure("tarry", shape, n, repeats)
        d = measure("dask", shape, n, repeats)
        cells = [shape, f"{int(t['tasks']):,}"]
        for col in ("build", "sync", "threads"):
            cells += [f"{t[col]:.2f}", f"{d[col]:.1f}", f"{d[col] / t[col]:.0f}x"]
        print("| " + " | ".join(cells) + " |")
    for shape, n in big.items():
        t = measure("tarry", shape, n, max(1, repeats // 2))
        cells = [shape, f"{int(t['tasks']):,}"]
        for col in ("build", "sync", "threads"):
            cells += [f"{t[col]:.2f}", "-", "-"]
        print("| " + " | ".join(cells) + " |")

    mine, theirs = fixed_cost(repeats)
    print(f"\nfixed cost of compute() on a one-task graph (threads): tarry {mine:.1f} µs, "
          f"dask {theirs:.0f} µs, ratio {theirs / mine:.0f}x")  # fmt: skip
    if not args.quick:
        small = measure("tarry", "tree", 500, repeats)
        large = measure("tarry", "tree", 500_000, 1)
        gc.disable()  # how much of the growth is CPython's cyclic garbage collector
        try:
            small_nogc = measure("tarry", "tree", 500, repeats)
            large_nogc = measure("tarry", "tree", 500_000, 1)
        finally:
            gc.enable()
        for label, lo, hi in (("gc on", small, large), ("gc off", small_nogc, large_nogc)):
            print(f"linearity ({label}): tree of 1M vs 1k tasks: "
                  + ", ".join(f"{col} {hi[col]:.2f} vs {lo[col]:.2f} µs ({hi[col] / lo[col]:.2f}x)"
                              for col in ("build", "sync", "threads")))  # fmt: skip
        plan = planning_cost(1_000_000, 3)
        print("planning cost (Run construction) per task at 1M tasks: "
              + ", ".join(f"{shape} {us:.2f} µs" for shape, us in plan.items()))  # fmt: skip
        print(f"memory per pending task (1M-task tree + its run state): "
              f"{memory_per_task(1_000_000):.0f} bytes")  # fmt: skip


if __name__ == "__main__":
    main()

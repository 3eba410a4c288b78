"""What the cache across runs costs and saves: many small tasks, and a pipeline over an array.

Many small tasks (``inc(i)`` for ``n`` values, each pure, read by one sum):

* a compute without a cache, the first with one (every task a miss, its
  result written), and the second (the sum loads: nothing runs);
* the second run asking for every ``inc`` as a target: ``n`` hits, so the
  cost of one hit (key, lookup, load) per task;
* ``tarry.explain(..., cache=)`` on the same graph, per task.

A pipeline of 10 steps over a NumPy array, read from a file by its first
step, or passed in as a literal (whose content each run hashes once): the
first run, the second (the last step loads), and, for scale, reading that
entry's file and unpickling it.

Every figure is the median of several repeats, on the sync scheduler (the
cache's own costs, not a scheduler's). The machine is shared and noisy.

Run: ``python benchmarks/bench_cache.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import tarry
from tarry._cache.formats import Header, decode_entry, read_header


def inc(x: int) -> int:
    return x + 1


def total(values: list[int]) -> int:
    return sum(values)


def step(x: Any, i: int) -> Any:
    return x * 1.0001 + i


def timed(action: Callable[[], Any], repeats: int, fresh: Callable[[], None]) -> float:
    """Median seconds of ``action``, each after ``fresh()`` (not timed)."""
    times = []
    for _ in range(repeats):
        fresh()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class Store:
    """A cache folder, emptied before a first run and filled before a second."""

    def __init__(self, where: Path, *graphs: Any) -> None:
        self.where = str(where)
        self.graphs = graphs

    def empty(self) -> None:
        shutil.rmtree(self.where, ignore_errors=True)

    def warm(self) -> None:
        if not Path(self.where).exists():
            for graph in self.graphs:
                tarry.compute(*graph, scheduler="sync", cache=self.where)


def small_tasks(n: int, repeats: int, folder: Path) -> None:
    lazy_inc = tarry.delayed(inc, pure=True)
    incs = [lazy_inc(i) for i in range(n)]
    graph = tarry.delayed(total, pure=True)(incs)
    store = Store(folder / "small", [graph], incs)
    where, empty, warm = store.where, store.empty, store.warm
    plain = timed(lambda: graph.compute(scheduler="sync"), repeats, lambda: None)
    first = timed(lambda: graph.compute(scheduler="sync", cache=where), repeats, empty)
    second = timed(lambda: graph.compute(scheduler="sync", cache=where), repeats, warm)
    hits = timed(lambda: tarry.compute(*incs, scheduler="sync", cache=where), repeats, warm)
    explain = timed(lambda: tarry.explain(graph, cache=where), repeats, warm)
    per = 1e6 / n
    print(f"{n:,} small pure tasks, sync scheduler (median of {repeats}):")
    print(f"  no cache                  {plain * 1e3:9.1f} ms  {plain * per:7.1f} µs/task")
    print(f"  first run, all misses     {first * 1e3:9.1f} ms  {first * per:7.1f} µs/task")
    print(f"    cost of a miss          {'':12}  {(first - plain) * per:7.1f} µs/task")
    print(f"  second run (sum loads)    {second * 1e3:9.1f} ms  {second * per:7.1f} µs/task")
    print(f"  {n:,} targets, all hits  {hits * 1e3:9.1f} ms  {hits * per:7.1f} µs/task")
    print(f"  explain(cache=)           {explain * 1e3:9.1f} ms  {explain * per:7.1f} µs/task")


def pipeline(megabytes: int, repeats: int, folder: Path) -> None:
    data = np.random.default_rng(0).random(megabytes * 2**20 // 8)
    np.save(folder / "input.npy", data)
    from_file = tarry.delayed(np.load, pure=True)(str(folder / "input.npy"))
    print(f"10-step pipeline over a {megabytes} MB array, sync (median of {repeats}):")
    ten_steps("read from a file", from_file, repeats, folder)
    ten_steps("passed as a literal", data, repeats, folder)


def ten_steps(label: str, start: Any, repeats: int, folder: Path) -> None:
    x = tarry.delayed(start, pure=True)
    for i in range(10):
        x = tarry.delayed(step, pure=True)(x, i)
    store = Store(folder / label.replace(" ", "-"), [x])
    where = store.where
    plain = timed(lambda: x.compute(scheduler="sync"), repeats, lambda: None)
    first = timed(lambda: x.compute(scheduler="sync", cache=where), repeats, store.empty)
    second = timed(lambda: x.compute(scheduler="sync", cache=where), repeats, store.warm)
    largest = max(Path(where, "entries").rglob("*"), key=lambda p: p.stat().st_size)
    load = timed(lambda: _unframed(largest.read_bytes()), repeats, lambda: None)
    print(f"  input {label}:")
    print(f"    no cache                  {plain * 1e3:9.1f} ms")
    print(f"    first run, all misses     {first * 1e3:9.1f} ms")
    print(f"    second run (last loads)   {second * 1e3:9.1f} ms")
    print(f"    reading + unpickling the final result alone {load * 1e3:9.1f} ms")
    print(f"    second run / that         {second / load:9.2f}×")


def _unframed(data: bytes) -> Any:
    """An entry's value decoded from bytes in memory: the floor a load from memory pays."""
    header = read_header(data)
    assert isinstance(header, Header)
    return decode_entry(header, data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    args = parser.parse_args()
    n, megabytes, repeats = (500, 8, 1) if args.quick else (5_000, 100, 3)
    with tempfile.TemporaryDirectory() as folder:
        small_tasks(n, repeats, Path(folder))
        pipeline(megabytes, repeats, Path(folder))


if __name__ == "__main__":
    main()

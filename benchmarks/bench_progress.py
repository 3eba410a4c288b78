"""What diagnostics cost: plain compute vs ``progress=True`` vs ``tarry.profile()``.

Runs a tree of ~100,000 trivial tasks (50,000 incs combined pairwise by adds)
and prints the median of several computes for each variant, with its ratio
to the plain compute. ``progress=True`` is what users get (the bar appears
only after 1 s); "bar shown" forces the bar from the start
(``tarry.progress(min_time=0)``), so its drawing, to standard error, is
measured too. The profile time covers the whole ``with`` block, sampler and
bookkeeping included. The goal for the progress bar is at most 5 % overhead.

Run: ``python benchmarks/bench_progress.py`` (``--quick`` for a smoke run,
``--scheduler sync`` for another scheduler).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

import tarry


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def tree(leaves: int) -> tarry.Delayed[int]:
    """``leaves`` incs combined pairwise: ``2 * leaves - 1`` tasks."""
    lazy_inc, lazy_add = tarry.delayed(inc), tarry.delayed(add)
    level = [lazy_inc(i) for i in range(leaves)]
    while len(level) > 1:
        paired = [lazy_add(a, b) for a, b in zip(level[::2], level[1::2], strict=False)]
        level = paired + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small graph, 3 repeats")
    parser.add_argument("--scheduler", default="threads")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    leaves = 5_000 if args.quick else 50_000
    repeats = 3 if args.quick else args.repeats
    graph = tree(leaves)
    expected = sum(range(1, leaves + 1))
    name = args.scheduler

    def plain() -> None:
        assert graph.compute(scheduler=name) == expected

    def with_progress() -> None:
        assert graph.compute(scheduler=name, progress=True) == expected

    def with_bar_shown() -> None:
        # min_time=0: the bar appears at once, so its drawing is measured too
        with tarry.progress(min_time=0):
            assert graph.compute(scheduler=name) == expected

    def with_profile() -> None:
        with tarry.profile() as prof:
            assert graph.compute(scheduler=name) == expected
        assert len(prof.records[0].events) == 2 * leaves - 1

    variants: dict[str, Callable[[], None]] = {
        "plain compute": plain,
        "progress=True": with_progress,
        "bar shown": with_bar_shown,
        "profile()": with_profile,
    }
    times: dict[str, list[float]] = {label: [] for label in variants}
    plain()  # warm up: thread pool, imports
    with_progress()
    with_profile()
    # interleaved, and in a rotating order, so drift of a shared machine and
    # the cost of coming first hit every variant alike
    labels = list(variants)
    for i in range(repeats):
        for label in labels[i % len(labels) :] + labels[: i % len(labels)]:
            run = variants[label]
            gc.collect()
            start = time.perf_counter()
            run()
            times[label].append(time.perf_counter() - start)
    tasks = 2 * leaves - 1
    base = statistics.median(times["plain compute"])
    print(f"\n{tasks:,} trivial tasks on {name}, median of {repeats} computes")
    print(f"{'variant':<16}{'median s':>10}{'µs/task':>10}{'ratio':>8}   all runs (s)")
    for label, values in times.items():
        median = statistics.median(values)
        runs = " ".join(f"{v:.2f}" for v in values)
        print(f"{label:<16}{median:>10.3f}{median / tasks * 1e6:>10.1f}"
              f"{median / base:>8.3f}   {runs}")  # fmt: skip


if __name__ == "__main__":
    main()
